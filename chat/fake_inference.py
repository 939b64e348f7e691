"""A local stand-in of Heroku Managed Inference's chat completions API, as a plain ASGI 3 app.

It is both the offline demo model (used when INFERENCE_URL is unset) and the test double that tests reach over
real HTTP. It follows what Heroku documents and what its models enforce: Heroku's error shape and validation
rules, rate-limit headers from a sliding one-minute window, SSE chunks with reasoning and fragmented tool calls,
``data: [DONE]``.
Scripted replies (``enqueue``) and faults (``inject``) come from the test or operator, never from message text,
so nobody chatting with the demo can trigger a failure by typing a magic word.
"""

import asyncio
import base64
import binascii
import io
import json
import math
import re
import socket
import threading
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field

import uvicorn
from django.conf import settings
from PIL import Image, UnidentifiedImageError

from chat import demo_model

KNOWN_MODELS = frozenset(
    {"claude-4-5-sonnet", "claude-4-5-haiku", "claude-sonnet-4-6", "claude-4-sonnet", "claude-3-7-sonnet"}
)
DEFAULT_MODELS = frozenset({"claude-4-5-sonnet", "claude-4-5-haiku"})
REQUEST_LIMIT, TOKEN_LIMIT, WINDOW = 150, 800_000, 60.0
DEFAULT_MAX_TOKENS = 4096
MAX_IMAGES, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE = 20, int(3.75 * 1024 * 1024), 8000
ROLES = ("system", "user", "assistant", "tool")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "authorization_error",
               429: "rate_limit_error"}
DATA_URL = re.compile(r"data:image/(jpeg|png|gif|webp);base64,(.*)", re.S)
FAULT_KINDS = ("status", "delay_first_byte", "cut", "malformed", "error_event", "drop")


@dataclass
class Reply:
    """A scripted reply. ``tool_calls`` holds ``(name, arguments)`` pairs; ``chunk_size`` is characters per text
    delta (None: word-sized deltas); ``finish_reason`` and ``usage`` default to what the reply implies."""

    text: str = ""
    reasoning: str | None = None
    tool_calls: list = field(default_factory=list)
    chunk_size: int | None = None
    finish_reason: str | None = None
    usage: dict | None = None


@dataclass
class Fault:
    """One failure, consumed by the next chat completion request.

    ``status``: answer ``status`` with ``headers`` and ``body`` (dict as JSON, str as text, None: Heroku's shape).
    ``delay_first_byte``: wait ``seconds`` before the response starts. ``cut``, ``malformed``, ``error_event``:
    send ``chunks`` chunks of the reply, then close the connection / send ``data: {not json`` / send ``error``.
    ``drop``: close the connection without any response.
    """

    kind: str
    status: int = 500
    headers: dict = field(default_factory=dict)
    body: dict | str | None = None
    seconds: float = 0.0
    chunks: int = 0
    error: dict | None = None

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")


class ApiError(Exception):
    """An error response: ``payload`` is Heroku's error object unless the caller supplies a raw body."""

    def __init__(self, status: int, message: str, headers: dict | None = None, payload=None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.payload = payload if payload is not None else {"error": {"code": status, "message": message,
                                                                      "type": kind}}


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
        _validate(body, self.models)
        self._check_budget()
        reply = _resolve(body, self.replies.popleft() if self.replies else demo_reply(body))
        if not body.get("stream"):
            return await _send_response(send, 200, _completion(body, reply), self._limit_headers())
        await self._stream(reply, _stream_chunks(body, reply), fault, gone, send)

    def _authorize(self, headers):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or (self.key is not None and token.strip() != self.key):
            raise ApiError(401, "Invalid or missing API key.")

    def _record(self, body):
        now = time.monotonic()
        while self._window and self._window[0][0] <= now - WINDOW:
            self._window.popleft()
        self._window.append((now, _request_tokens(body)))

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
            return await _send_body(send, b"data: {not json\n\n")
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


# --- request validation, as Heroku and the Bedrock models behind it answer -------------------------------------


def _validate(body, models):
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required.")
    if models is not None and model not in models:
        if model in KNOWN_MODELS:
            raise ApiError(403, f"This key is not authorized to use model {model}: it is not provisioned.")
        raise ApiError(400, f"Unknown model: {model}.")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not _is_number(value) or not 0 <= value <= 1):
            raise ApiError(400, f"{name} must be a number between 0 and 1.")
    max_tokens = _max_tokens(body)
    if type(max_tokens) is not int or max_tokens < 1:
        raise ApiError(400, "max_tokens must be a positive integer.")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "stream must be a boolean.")
    _validate_thinking(body.get("extended_thinking"), max_tokens)
    _validate_tools(body.get("tools"), body.get("tool_choice"))
    _validate_messages(body.get("messages"))


def _max_tokens(body: dict):
    return DEFAULT_MAX_TOKENS if body.get("max_tokens") is None else body["max_tokens"]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate_thinking(thinking, max_tokens):
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        raise ApiError(400, "extended_thinking must be an object.")
    if not thinking.get("enabled"):
        return
    budget = thinking.get("budget_tokens")
    if type(budget) is not int or budget < 1024:
        raise ApiError(400, "extended_thinking.budget_tokens must be an integer of at least 1024.")
    if budget >= max_tokens:
        raise ApiError(400, "extended_thinking.budget_tokens must be less than max_tokens.")


def _validate_tools(tools, tool_choice):
    names = []
    for position, tool in enumerate(tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        valid = isinstance(name, str) and re.fullmatch(r"[\w-]{1,64}", name) and tool.get("type") == "function"
        if not valid:
            raise ApiError(400, f"tools[{position}] must be a function tool with a valid name.")
        names.append(name)
    if tool_choice is None or tool_choice in ("none", "auto", "required"):
        return
    chosen = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    if chosen not in names:
        raise ApiError(400, "tool_choice must be none, auto, required or a function named in tools.")


def _validate_messages(messages):
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list.")
    open_calls, images = set(), 0
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise ApiError(400, f"messages[{position}].role must be one of {', '.join(ROLES)}.")
        if role == "tool" and message.get("tool_call_id") not in open_calls:
            raise ApiError(400, f"messages[{position}] is a tool result without a matching assistant tool call.")
        if role != "tool":
            # A tool result must answer a call of the assistant message just before it.
            open_calls = {call.get("id") for call in message.get("tool_calls") or [] if isinstance(call, dict)}
        images += _validate_content(position, role, message.get("content"))
    if images > MAX_IMAGES:
        raise ApiError(400, f"Too many images: {images}; at most {MAX_IMAGES} per request.")


def _validate_content(position, role, content) -> int:
    """The number of images in one message's content; raises ApiError for anything the API would refuse."""
    if isinstance(content, str) or (content is None and role == "assistant"):
        return 0
    if not isinstance(content, list):
        raise ApiError(400, f"messages[{position}].content must be a string or a list of parts.")
    images = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        if kind != "image_url":
            raise ApiError(400, f"messages[{position}].content has an unsupported part.")
        if role != "user":
            raise ApiError(400, f"messages[{position}]: images are only allowed in user messages.")
        _validate_image(position, part.get("image_url"))
        images += 1
    return images


def _validate_image(position, image_url):
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    data = _decode_data_url(url if isinstance(url, str) else "")
    if data is None:
        raise ApiError(400, f"messages[{position}]: images must be base64 data URLs of jpeg, png, gif or webp.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(400, f"messages[{position}]: an image is larger than 3.75 MB.")
    info = image_info(data)
    if info is None:
        raise ApiError(400, f"messages[{position}]: could not process image.")
    if max(info[1], info[2]) > MAX_IMAGE_SIDE:
        raise ApiError(400, f"messages[{position}]: an image is larger than 8000×8000 pixels.")


def _decode_data_url(url: str) -> bytes | None:
    match = DATA_URL.fullmatch(url.strip())
    if not match:
        return None
    try:
        return base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from the image header only, or None when Pillow cannot identify it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.format or "unknown", image.width, image.height
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return None


# --- the reply -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    """A reply fitted to one request: reasoning only when asked for, text cut at max_tokens, ids, usage."""

    text: str
    reasoning: str
    calls: list  # (id, name, arguments as JSON text)
    chunk_size: int | None
    finish_reason: str
    usage: dict


def _resolve(body, reply: Reply) -> _Resolved:
    thinking = body.get("extended_thinking") or {}
    wants_reasoning = bool(thinking.get("enabled")) and thinking.get("include_reasoning") is not False
    reasoning = (reply.reasoning or "Let me think about how to answer this.") if wants_reasoning else ""
    text, finish = reply.text, reply.finish_reason
    limit = _max_tokens(body) * 4
    if finish is None and len(text) > limit:
        text, finish = text[:limit], "length"
    calls = [
        (f"toolu_{uuid.uuid4().hex[:24]}", name, args if isinstance(args, str) else json.dumps(args))
        for name, args in reply.tool_calls
    ]
    prompt = _request_tokens(body)
    completion = _tokens(text + reasoning + "".join(arguments for _, _, arguments in calls))
    usage = reply.usage or {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}
    return _Resolved(text, reasoning, calls, reply.chunk_size, finish or ("tool_calls" if calls else "stop"), usage)


def _stream_chunks(body, reply: _Resolved) -> list[dict]:
    """Every chunk of the stream: role first, reasoning, text, fragmented tool calls, then finish with usage."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body["model"]}
    deltas = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning": {"thinking": piece}} for piece in _pieces(reply.reasoning, reply.chunk_size)]
    deltas += [{"content": piece} for piece in _pieces(reply.text, reply.chunk_size)]
    for index, (call_id, name, arguments) in enumerate(reply.calls):
        function = {"name": name, "arguments": ""}
        deltas.append({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]})
        deltas += [{"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                   for piece in _pieces(arguments, max(1, math.ceil(len(arguments) / 3)))]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    last = {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}
    return chunks + [{**base, "choices": [last], "usage": reply.usage}]


def _completion(body, reply: _Resolved) -> dict:
    message = {"role": "assistant", "content": reply.text if reply.text or not reply.calls else None, "refusal": None}
    if reply.calls:
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                                 for call_id, name, args in reply.calls]
    if reply.reasoning:
        message["reasoning"] = {"thinking": reply.reasoning}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fake-heroku-inference",
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
            "usage": reply.usage}


def _pieces(text: str, size: int | None) -> list[str]:
    """Deltas of ``size`` characters, or word-sized ones (each word with the spaces after it)."""
    if not text:
        return []
    if size:
        return [text[start:start + size] for start in range(0, len(text), size)]
    return re.findall(r"\S+\s*|\s+", text)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _request_tokens(body) -> int:
    """A rough prompt size: four characters a token, a flat 1,000 per image."""
    if not isinstance(body, dict):
        return 1
    text, images = json.dumps(body.get("tools") or []), 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        text += _text_of(content)
        images += len(_image_urls(content))
    return _tokens(text) + 1000 * images


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _image_urls(content) -> list[str]:
    parts = content if isinstance(content, list) else []
    urls = [p.get("image_url") for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    return [url.get("url", "") if isinstance(url, dict) else str(url) for url in urls]


# --- the demo model's answers (its words are in chat/demo_model.py) ------------------------------------------


def demo_reply(body: dict) -> Reply:
    """The demo model's answer to a valid request: a title for the app's title request, a labelled echo, one
    call of a tool the user named, or a quote of a tool result."""
    messages = body["messages"]
    last = messages[-1]
    if messages[0]["role"] == "system" and messages[0].get("content") == demo_model.TITLE_PROMPT:
        return Reply(text=demo_model.title(_text_of(last.get("content"))))
    if last["role"] == "tool":
        return Reply(text=_tool_result_text(messages, last))
    tool = _named_tool(body, last)
    if tool is not None:
        name = tool["function"]["name"]
        return Reply(text=f"I'll use the `{name}` tool.", tool_calls=[(name, _placeholder_arguments(tool))])
    user = next((message for message in reversed(messages) if message["role"] == "user"), last)
    question = _text_of(user.get("content")).strip()
    return Reply(text=demo_model.greeting(question, _describe_images(user)), reasoning=demo_model.reasoning(question))


def _describe_images(message: dict) -> str:
    described = []
    for url in _image_urls(message.get("content")):
        data = _decode_data_url(url)
        info = image_info(data) if data else None
        described.append(f"a {info[0]} image of {info[1]}×{info[2]} pixels" if info else "an unreadable image")
    if not described:
        return "You attached no images."
    listed = ", ".join(described[:-1]) + " and " + described[-1] if len(described) > 1 else described[0]
    return f"You attached {len(described)} image{'s' if len(described) > 1 else ''}: {listed}."


def _named_tool(body: dict, last: dict) -> dict | None:
    if last["role"] != "user" or body.get("tool_choice") == "none":
        return None
    text = _text_of(last.get("content"))
    for tool in body.get("tools") or []:
        name = tool["function"]["name"]
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.I):
            return tool
    return None


def _placeholder_arguments(tool: dict) -> dict:
    """Arguments for the required parameters: the schema's default, first enum value or example, else by type."""
    schema = tool["function"].get("parameters") or {}
    properties = schema.get("properties") or {}
    by_type = {"string": "example", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    arguments = {}
    for name in schema.get("required") or []:
        spec = properties.get(name) or {}
        if "default" in spec:
            arguments[name] = spec["default"]
        elif spec.get("enum") or spec.get("examples"):
            arguments[name] = (spec.get("enum") or spec.get("examples"))[0]
        else:
            arguments[name] = by_type.get(spec.get("type"), "example")
    return arguments


def _tool_result_text(messages: list, result: dict) -> str:
    calls = [call for message in messages if message["role"] == "assistant"
             for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    call = next((call for call in calls if call.get("id") == result.get("tool_call_id")), {})
    name = (call.get("function") or {}).get("name", "tool")
    return demo_model.tool_result(name, _text_of(result.get("content")).strip())


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


_demo: RunningServer | None = None
_demo_lock = threading.Lock()


def demo_server() -> RunningServer:
    """The process-wide demo model, started on first use. It accepts any model id: the demo has no add-ons."""
    global _demo
    with _demo_lock:
        if _demo is None or not _demo.thread.is_alive():
            _demo = serve_in_thread(FakeInference(key="demo", models=None, keep_requests=0))
        return _demo
