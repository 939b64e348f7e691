"""ASGI entry point: HTTP through Django, WebSockets through Channels (canonical order, see STYLE.md).

Sockets pass an origin check first: the app's own origin or a CSRF_TRUSTED_ORIGINS entry, not any host that
ALLOWED_HOSTS admits (chat/socket/origins.py).

Outermost, the demo model is started before the first scope when INFERENCE_DEMO is on (chat/standin/demo.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402
from chat.socket.lifespan import Lifespan  # noqa: E402
from chat.socket.origins import SameOriginValidator  # noqa: E402
from chat.standin.demo import StartDemoModel  # noqa: E402
from chatsite.limits import BodySizeLimit  # noqa: E402

application = StartDemoModel(
    Lifespan(
        ProtocolTypeRouter(
            {
                "http": BodySizeLimit(django_asgi_app),
                "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
            }
        )
    )
)
