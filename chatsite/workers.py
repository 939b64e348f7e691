"""The gunicorn worker class for Heroku: uvicorn_worker's, with the settings Heroku's 30 s restart needs."""

import os

from uvicorn_worker import UvicornWorker


class ChatUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {
        **UvicornWorker.CONFIG_KWARGS,
        # uvicorn otherwise waits forever for open sockets on SIGTERM; Heroku kills the dyno after 30 s.
        "timeout_graceful_shutdown": int(os.environ.get("GRACEFUL_TIMEOUT", "20")),
        # Compression roughly doubles the memory held per idle socket for little gain on small JSON frames.
        "ws_per_message_deflate": False,
        # Channels' router does not speak the lifespan protocol.
        "lifespan": "off",
    }
