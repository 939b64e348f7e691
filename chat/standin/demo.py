"""The built-in demo model: the stand-in API served inside the web process when no INFERENCE_URL is configured.

The inference client only ever calls INFERENCE_URL. ``start()`` serves the stand-in on a daemon thread of this
process (once) and points the client at it by setting INFERENCE_URL, INFERENCE_KEY and INFERENCE_DEMO at runtime.
``StartDemoModel`` wraps the ASGI application (chatsite/asgi.py) so that a process starts it before it serves
anything, and only a process that serves: ``migrate``, ``collectstatic`` or ``shell`` never run it.
"""

import asyncio
import threading

from django.conf import settings

from chat.standin.api import FakeInference, RunningServer, serve_in_thread

KEY = "demo"

_server: RunningServer | None = None
_lock = threading.Lock()


def server() -> RunningServer:
    """The process-wide demo model, started on first use (again if its thread died). It accepts any model id:
    the demo has no add-ons."""
    global _server
    with _lock:
        if _server is None or not _server.thread.is_alive():
            _server = serve_in_thread(FakeInference(key=KEY, models=None, keep_requests=0))
        return _server


def start() -> RunningServer:
    """Serve the demo model in this process if it is not served yet, and point the client at it.

    Blocks until the server accepts connections (milliseconds): call it off the event loop. Safe to call again;
    each call points the settings at the one server (tests undo settings between tests).
    """
    running = server()
    settings.INFERENCE_URL = running.base_url
    settings.INFERENCE_KEY = KEY
    settings.INFERENCE_DEMO = True
    return running


class StartDemoModel:
    """ASGI middleware: with INFERENCE_DEMO on and no INFERENCE_URL yet, starts the demo model before the scope.

    The first scope a process serves is the lifespan startup under uvicorn and gunicorn's uvicorn workers (each
    worker after the fork, so each has its own server thread) and the first request under ``manage.py runserver``,
    where daphne runs no lifespan. Later scopes find INFERENCE_URL set and pass straight through.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if settings.INFERENCE_DEMO and not settings.INFERENCE_URL:
            await asyncio.to_thread(start)
        return await self.app(scope, receive, send)
