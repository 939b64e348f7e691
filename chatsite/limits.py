"""Refuse oversized HTTP request bodies before Django reads them.

Django's ASGI handler reads the whole body of a request (spooling it to a temporary file past
FILE_UPLOAD_MAX_MEMORY_SIZE) before any middleware or view runs, so a view can refuse a large upload only
after it has arrived on the dyno's disk. This wrapper answers 413 from the Content-Length alone, and cuts off
a body sent without one (chunked) as soon as it passes the limit.
"""

import json

from django.conf import settings

from chat.uploads.images import TOO_LARGE

# Room for what a request carries besides the largest upload (forms, headers counted in the body, JSON).
MARGIN = 64 * 1024


class BodySizeLimit:
    """ASGI middleware for the ``http`` scope: bodies up to CHAT_MAX_UPLOAD_BYTES + MARGIN get through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload_limit = settings.CHAT_MAX_UPLOAD_BYTES
        limit = upload_limit + MARGIN
        if _declared_length(scope) > limit:
            return await _refuse(send, upload_limit)
        received, over = 0, False

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    # Django drops a request whose client left, before it builds the request or answers.
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted_receive, send)
        if over:
            await _refuse(send, upload_limit)


def _declared_length(scope):
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server rejects a malformed length; the count below still applies
    return 0


async def _refuse(send, upload_limit):
    body = json.dumps({"error": TOO_LARGE.format(upload_limit / 1024 / 1024)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
