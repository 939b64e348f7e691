"""Fixtures that run the stand-in inference API over real HTTP, and canned byte streams for the client.

Loaded for the whole suite through ``pytest_plugins`` in conftest.py.
"""

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import pytest

from chat import inference
from chat.inference import client as inference_client
from chat.inference import retry
from chat.standin import demo
from chat.standin.api import FakeInference, serve_in_thread

STAND_IN_KEY = "demo"
HELLO = [{"role": "user", "content": "Hello"}]


class _Slot:
    """An ASGI app that forwards to whichever app a test put in it: one server, a fresh stand-in per test."""

    app = None

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class StandIn:
    fake: FakeInference
    base_url: str


@pytest.fixture(scope="session")
def _stand_in_server():
    slot = _Slot()
    server = serve_in_thread(slot)
    yield slot, server
    server.stop()


@pytest.fixture
def stand_in(_stand_in_server, settings):
    """A fresh FakeInference (key "demo", no pacing) as INFERENCE_URL, with short timeouts and no backoff."""
    slot, server = _stand_in_server
    slot.app = FakeInference(key=STAND_IN_KEY, delay=0.0)
    settings.INFERENCE_URL = server.base_url
    settings.INFERENCE_KEY = STAND_IN_KEY
    settings.INFERENCE_DEMO = False
    settings.INFERENCE_MAX_RETRIES = 2
    settings.INFERENCE_RETRY_BASE_DELAY = 0.0
    settings.INFERENCE_CONNECT_TIMEOUT = 2.0
    settings.INFERENCE_READ_TIMEOUT = 5.0
    return StandIn(slot.app, server.base_url)


@pytest.fixture
def slept(monkeypatch):
    """The delays the client waited before retrying, recorded instead of slept."""
    delays = []

    async def record(delay):
        delays.append(delay)

    monkeypatch.setattr(retry, "_sleep", record)
    return delays


@pytest.fixture
def demo_model(settings):
    """The built-in demo model as the API, as a site without INFERENCE_URL has it (paced by DEMO_DELTA_DELAY)."""
    running = demo.start()
    # Through pytest-django's wrapper as well, so that the end of the test undoes what start() set.
    settings.INFERENCE_URL, settings.INFERENCE_KEY, settings.INFERENCE_DEMO = running.base_url, demo.KEY, True
    return running


@pytest.fixture
async def fresh_clients():
    """Close the client's pooled connections after the test, so none outlives the server or loop it used."""
    yield
    await inference.aclose_clients()


async def collect(**kwargs):
    """Every event of a reply to HELLO."""
    return [event async for event in inference.stream_chat(HELLO, **kwargs)]


async def collect_until_error():
    """Events received before the stream raised, and the exception."""
    received = []
    with pytest.raises(inference.InferenceError) as caught:
        async for event in inference.stream_chat(HELLO):
            received.append(event)
    return received, caught.value


class ChunkStream(httpx.AsyncByteStream):
    """A response body delivered in exactly the given reads; ``None`` in the list blocks forever there."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.closed = False

    async def __aiter__(self):
        for chunk in self.chunks:
            if chunk is None:
                await asyncio.Event().wait()
            yield chunk

    async def aclose(self):
        self.closed = True


@dataclass
class Canned:
    """Scripted HTTP responses for the client, served in order through httpx.MockTransport."""

    responses: list = field(default_factory=list)
    requests: list = field(default_factory=list)

    def add(self, chunks=(), status=200, headers=None, content_type="text/event-stream") -> ChunkStream:
        stream = ChunkStream(chunks)
        self.responses.append((status, {"content-type": content_type, **(headers or {})}, stream))
        return stream

    def add_error(self, status, payload, headers=None) -> ChunkStream:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.add([body], status, headers, content_type="application/json")

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, headers, stream = self.responses.pop(0)
        return httpx.Response(status, headers=headers, stream=stream)


@pytest.fixture
async def canned(monkeypatch, settings):
    """Point the client at canned responses: ``canned.add([b"data: …", …])`` scripts the next one."""
    script = Canned()
    settings.INFERENCE_URL = "http://inference.test"
    settings.INFERENCE_KEY = "inf-test-key"
    settings.INFERENCE_DEMO = False
    settings.INFERENCE_MAX_RETRIES = 2
    settings.INFERENCE_RETRY_BASE_DELAY = 0.0
    monkeypatch.setattr(
        inference_client, "_make_client", lambda: httpx.AsyncClient(transport=httpx.MockTransport(script.handle))
    )
    await inference.aclose_clients()
    yield script
    await inference.aclose_clients()


def sse(payload) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def chunk(delta=None, finish_reason=None, **extra) -> bytes:
    """One chat.completion.chunk event in Heroku's shape."""
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish_reason}
    return sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "claude-4-5-sonnet",
                "choices": [choice], **extra})


DONE = b"data: [DONE]\n\n"
