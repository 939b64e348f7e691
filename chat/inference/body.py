"""A request body written as it is sent: base64 images produced chunk by chunk from their stored bytes.

A prompt with 20 maximum-size images weighs about 75 MB once every image is a base64 ``data:`` URL inside one
JSON string, and a turn would hold that for its whole life. Instead the prompt carries a ``DataUrl`` where the
URL goes: it knows its length but not its text. ``encode`` serialises everything else exactly as httpx's
``json=`` does and leaves a slot for each image; the image's bytes are read (once per attempt, one image at a
time) only when the body reaches it, and leave memory as soon as they are written. So a turn holds its text,
and a request being sent holds one image's bytes and one base64 chunk.
"""

import base64
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from chat.inference.errors import InferenceError

# A multiple of 3, so every chunk but the last encodes to base64 without padding: 48 KiB in, 64 KiB out.
CHUNK = 3 * 16 * 1024
IMAGE_GONE = "An image in this conversation is no longer available. Remove it and try again."


class ImageGone(InferenceError):
    """A stored image could not be read while the request was written; nothing was answered."""

    user_message = IMAGE_GONE


class DataUrl:
    """A ``data:`` URL of ``size`` stored bytes of ``content_type``, read by awaiting ``read()`` (bytes, or None
    when they are gone) only while a request body is written, so it can stand in a prompt for as long as the
    turn lives. Its JSON text is plain ASCII (base64 needs no escaping)."""

    def __init__(self, content_type: str, size: int, read: Callable[[], Awaitable[bytes | None]]):
        self.content_type, self.size, self._read = content_type, size, read
        self.prefix = f"data:{content_type};base64,".encode("ascii")

    def __len__(self):
        return len(self.prefix) + 4 * math.ceil(self.size / 3)

    def __repr__(self):
        return f"DataUrl({self.content_type!r}, {self.size})"

    async def chunks(self) -> AsyncIterator[bytes]:
        """The URL's text in pieces of at most 64 KiB; raises ImageGone when the stored bytes are missing or
        not ``size`` long (the length of the body was already promised)."""
        data = await self._read()
        if data is None or len(data) != self.size:
            raise ImageGone(f"stored image of {self.size} bytes read as {None if data is None else len(data)}")
        view = memoryview(data)
        yield self.prefix
        for start in range(0, self.size, CHUNK):
            yield base64.b64encode(view[start : start + CHUNK])


class Body:
    """A JSON request body whose ``DataUrl`` values are written as it is sent.

    ``len(body)`` is its exact size in bytes (sent as Content-Length, so no chunked encoding); ``stream()`` is a
    fresh async iterator of its bytes each time it is called, one per attempt of the request. The bytes are
    those of ``json.dumps`` with httpx's options over the same body with each URL written out.
    """

    def __init__(self, body: dict):
        urls = []
        token = uuid.uuid4().hex  # random: no text of the body can spell a slot's marker

        def slot(value):
            if not isinstance(value, DataUrl):
                raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
            urls.append(value)
            return f"{token}{len(urls) - 1}"

        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=slot)
        pieces = re.split(f"{token}([0-9]+)", text)
        # re.split alternates: text, slot number, text, ...; each slot sits between the quotes of a JSON string.
        self._texts = [piece.encode("utf-8") for piece in pieces[0::2]]
        self._urls = [urls[int(number)] for number in pieces[1::2]]
        self._length = sum(map(len, self._texts)) + sum(map(len, self._urls))

    def __len__(self):
        return self._length

    async def stream(self) -> AsyncIterator[bytes]:
        for text, url in zip(self._texts, self._urls):
            yield text
            async for chunk in url.chunks():
                yield chunk
        yield self._texts[-1]
