"""A local stand-in of Heroku Managed Inference's chat completions API, as a plain ASGI 3 app.

It is both the offline demo model (chat/standin/demo.py serves it when INFERENCE_URL is unset) and the test double
that tests reach over real HTTP. It follows what Heroku documents and what its models enforce: Heroku's error shape
and validation rules, rate-limit headers from a sliding one-minute window, SSE chunks with reasoning and fragmented
tool calls, ``data: [DONE]``.
Scripted replies (``enqueue``) and faults (``inject``) come from the test or operator, never from message text,
so nobody chatting with the demo can trigger a failure by typing a magic word.

This module holds the app, its faults and the servers that run it; what the API accepts and refuses is in
chat/standin/validation.py, how replies become chunks and completions in chat/standin/replies.py.
"""

import asyncio
import json
import math
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import uvicorn
from django.conf import settings

from chat.standin.replies import Reply, completion, demo_reply, request_tokens, resolve, stream_chunks
from chat.standin.validation import ApiError, validate

DEFAULT_MODELS = frozenset({"claude-4-5-sonnet", "claude-4-5-haiku"})
REQUEST_LIMIT, TOKEN_LIMIT, WINDOW = 150, 800_000, 60.0
FAULT_KINDS = ("status", "delay_first_byte", "cut", "malformed", "error_event", "drop")


@dataclass
class Fault:
    """One failure, consumed by the next chat completion request.

    ``status``: answer ``status`` with ``headers`` and ``body`` (dict as JSON, str as text, None: Heroku's shape).
    ``delay_first_byte``: wait ``seconds`` before the response starts. ``cut``, ``malformed``, ``error_event``:
    send ``chunks`` chunks of the reply, then close the connection / send ``data: <data>`` (``{not json`` unless
    given) / send ``error``.
    ``drop``: close the connection without any response.
    """

    kind: str
    status: int = 500
    headers: dict = field(default_factory=dict)
    body: dict | str | None = None
    seconds: float = 0.0
    chunks: int = 0
    error: dict | None = None
    data: str = "{not json"

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")


class FakeInference:
    """ASGI app for ``POST /v1/chat/completions``. ``key=None`` accepts any bearer token; ``models=None``
    accepts any model id; ``control=True`` serves ``/__control__/…`` so another process can drive it;
    ``enforce_limits=True`` answers 429 once the minute's request or token budget is spent. ``requests`` holds
    the last ``keep_requests`` requests received (bounded: bodies carry base64 images)."""

    def __init__(self, key="demo", models=DEFAULT_MODELS, delay=None, control=False, enforce_limits=False,
                 keep_requests=1000):
        self.key = key
        self.models = None if models is None else frozenset(models)
        self.delay = settings.DEMO_DELTA_DELAY if delay is None else delay
        self.control = control
        self.enforce_limits = enforce_limits
        self.replies: deque[Reply] = deque()
        self.faults: deque[Fault] = deque()
        self.requests: deque[dict] = deque(maxlen=keep_requests)
        self._window: deque[tuple[float, int]] = deque()

    def enqueue(self, reply: Reply) -> None:
        self.replies.append(reply)

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        if self.control and scope["path"].startswith("/__control__/"):
            return await self._serve_control(scope, raw, send)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        body = _parse_json(raw)
        self.requests.append({"method": scope["method"], "path": scope["path"], "headers": headers, "body": body})
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            await self._serve_api(scope, headers, body, gone, send)
        except ApiError as error:
            await _send_response(send, error.status, error.payload, {**self._limit_headers(), **error.headers})
        finally:
            watcher.cancel()

    async def _serve_api(self, scope, headers, body, gone: asyncio.Event, send):
        if scope["path"] != "/v1/chat/completions":
            raise ApiError(404, f"No route for {scope['path']}.")
        if scope["method"] != "POST":
            raise ApiError(405, "Use POST.", {"allow": "POST"})
        self._record(body)
        fault = self.faults.popleft() if self.faults else None
        if fault and fault.kind == "status":
            raise ApiError(fault.status, f"Injected HTTP {fault.status}.", fault.headers, fault.body)
        if fault and fault.kind == "drop":
            return await _drop_connection(send)
        if fault and fault.kind == "delay_first_byte" and await _wait_for(gone, fault.seconds):
            return  # the client gave up: it must not consume a reply scripted for a later request
        self._authorize(headers)
        validate(body, self.models)
        self._check_budget()
        reply = resolve(body, self.replies.popleft() if self.replies else demo_reply(body))
        if not body.get("stream"):
            return await _send_response(send, 200, completion(body, reply), self._limit_headers())
        await self._stream(reply, stream_chunks(body, reply), fault, gone, send)

    def _authorize(self, headers):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or (self.key is not None and token.strip() != self.key):
            raise ApiError(401, "Invalid or missing API key.")

    def _record(self, body):
        now = time.monotonic()
        while self._window and self._window[0][0] <= now - WINDOW:
            self._window.popleft()
        self._window.append((now, request_tokens(body)))

    def _check_budget(self):
        requests, tokens = len(self._window), sum(cost for _, cost in self._window)
        if self.enforce_limits and (requests > REQUEST_LIMIT or tokens > TOKEN_LIMIT):
            raise ApiError(429, "Rate limit exceeded: too many requests or tokens in the last minute.",
                           {"retry-after": str(self._reset_seconds())})

    def _reset_seconds(self) -> int:
        if not self._window:
            return 0
        return max(1, math.ceil(self._window[0][0] + WINDOW - time.monotonic()))

    def _limit_headers(self) -> dict:
        requests, tokens = len(self._window), sum(cost for _, cost in self._window)
        reset = f"{self._reset_seconds()}s"
        return {
            "x-ratelimit-limit-requests": str(REQUEST_LIMIT),
            "x-ratelimit-remaining-requests": str(max(0, REQUEST_LIMIT - requests)),
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": str(TOKEN_LIMIT),
            "x-ratelimit-remaining-tokens": str(max(0, TOKEN_LIMIT - tokens)),
            "x-ratelimit-reset-tokens": reset,
        }

    async def _stream(self, reply, chunks, fault, gone, send):
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                   **self._limit_headers()}
        await send({"type": "http.response.start", "status": 200, "headers": _header_list(headers)})
        stop_after = fault.chunks if fault and fault.kind in ("cut", "malformed", "error_event") else len(chunks)
        for number, chunk in enumerate(chunks[:stop_after]):
            if number and self.delay:
                await asyncio.sleep(self.delay)
            if gone.is_set():
                return
            await _send_body(send, _sse(chunk), more=True)
        await self._end_stream(fault, send)

    async def _end_stream(self, fault, send):
        kind = fault.kind if fault else None
        if kind == "cut":
            return await _drop_connection(send)
        if kind == "malformed":
            return await _send_body(send, f"data: {fault.data}\n\n".encode())
        if kind == "error_event":
            error = fault.error or {"code": 500, "message": "Injected server error.", "type": "server_error"}
            return await _send_body(send, _sse({"error": error}))
        await _send_body(send, b"data: [DONE]\n\n")

    async def _serve_control(self, scope, raw, send):
        route = (scope["method"], scope["path"])
        try:
            items = _parse_json(raw)
            items = items if isinstance(items, list) else [items]
            if route == ("POST", "/__control__/faults"):
                for item in items:
                    self.inject(Fault(**item))
            elif route == ("POST", "/__control__/replies"):
                for item in items:
                    self.enqueue(Reply(**{**item, "tool_calls": [tuple(c) for c in item.get("tool_calls", [])]}))
            elif route == ("POST", "/__control__/reset"):
                for queue in (self.replies, self.faults, self.requests):
                    queue.clear()
            elif route == ("GET", "/__control__/requests"):
                return await _send_response(send, 200, list(self.requests), {})
            else:
                raise ApiError(404, f"No route for {scope['path']}.")
        except (TypeError, ValueError, AttributeError) as exc:
            return await _send_response(send, 400, ApiError(400, str(exc)).payload, {})
        except ApiError as error:
            return await _send_response(send, error.status, error.payload, {})
        await _send_response(send, 200, {"ok": True}, {})



# --- ASGI plumbing -------------------------------------------------------------------------------------------


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return b"".join(chunks)


def _parse_json(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _header_list(headers: dict) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in headers.items()]


async def _send_response(send, status: int, payload, headers: dict):
    if isinstance(payload, str):
        body, kind = payload.encode(), "text/plain; charset=utf-8"
    else:
        body, kind = json.dumps(payload).encode(), "application/json"
    headers = {"content-type": kind, "content-length": len(body), **headers}
    await send({"type": "http.response.start", "status": status, "headers": _header_list(headers)})
    await _send_body(send, body)


async def _send_body(send, data: bytes, more: bool = False):
    await send({"type": "http.response.body", "body": data, "more_body": more})


def _sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


async def _watch_disconnect(receive, gone: asyncio.Event):
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _wait_for(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True if ``event`` was set meanwhile."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _drop_connection(send):
    """Close the TCP connection mid-response, as a crashed upstream would.

    ASGI has no message for this; uvicorn binds ``send`` to its request cycle, which holds the transport. Under
    another server, raising makes it close the connection (after a 500 if nothing was sent yet).
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("injected fault: connection dropped")
    transport.close()
    # Let uvicorn notice the disconnect, so it neither logs an error nor answers with its own 500.
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.01)


# --- serving -------------------------------------------------------------------------------------------------


class RunningServer:
    """A uvicorn server on a daemon thread with its own event loop; ``app`` is the ASGI app it serves."""

    def __init__(self, app, server: uvicorn.Server, thread: threading.Thread, base_url: str):
        self.app, self.server, self.thread, self.base_url = app, server, thread, base_url

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``app`` on ``host:port`` (0: a free port) and return once it accepts connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # log_config=None: leave the host process's logging handlers alone.
    config = uvicorn.Config(app, log_level="warning", log_config=None, lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True,
                              name=f"fake-inference-{sock.getsockname()[1]}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the inference stand-in did not start on {host}:{port}")
        time.sleep(0.005)
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    return RunningServer(app, server, thread, f"http://{shown_host}:{sock.getsockname()[1]}")

