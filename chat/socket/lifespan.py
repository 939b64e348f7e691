"""The ASGI lifespan of a web process: sweep for dead replies and beat the sockets' heartbeat while up, drain
running replies on shutdown.

uvicorn first closes the sockets (and waits for requests in flight), then sends ``lifespan.shutdown``: that is
when running replies get CHAT_SHUTDOWN_GRACE seconds to finish before they are saved as interrupted.
"""

import logging

from django.conf import settings

from chat.live.hub import get_hub
from chat.logs import describe, kind
from chat.socket import heartbeat
from chat.turns import lifecycle, sweeper

log = logging.getLogger(__name__)


class Lifespan:
    """ASGI middleware answering the ``lifespan`` scope and passing every other scope to ``app``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                hub = get_hub()
                sweeper.start(hub)
                heartbeat.start(hub)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown(send)
                return

    async def _shutdown(self, send):
        try:
            await lifecycle.drain(settings.CHAT_SHUTDOWN_GRACE)
        except Exception as exc:
            log.error("shutdown: draining replies failed %s", describe(exc))
            # The server logs this message too: the exception's kind, not its text.
            return await send({"type": "lifespan.shutdown.failed", "message": kind(exc)})
        await get_hub().close()
        await send({"type": "lifespan.shutdown.complete"})
