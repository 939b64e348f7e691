"""The gunicorn worker class for Heroku: uvicorn_worker's, with the settings Heroku's 30 s restart needs."""

from uvicorn_worker import UvicornWorker

from chatsite import settings

# Requests in flight get this long after SIGTERM; then the lifespan shutdown gives running replies
# CHAT_SHUTDOWN_GRACE (chat/socket/lifespan.py). Both together stay under the Procfile's --graceful-timeout.
HTTP_DRAIN_SECONDS = 2


class ChatUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {
        **UvicornWorker.CONFIG_KWARGS,
        # uvicorn otherwise waits forever for open connections on SIGTERM; Heroku kills the dyno after 30 s.
        "timeout_graceful_shutdown": HTTP_DRAIN_SECONDS,
        # Compression roughly doubles the memory held per idle socket for little gain on small JSON frames.
        "ws_per_message_deflate": False,
        # Oversized frames are cut by the server before they are buffered whole for the consumer.
        "ws_max_size": settings.CHAT_MAX_FRAME_BYTES,
        # The lifespan shutdown drains running replies (chat/socket/lifespan.py).
        "lifespan": "on",
    }
