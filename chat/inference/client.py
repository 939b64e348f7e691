"""The only code that speaks HTTP to Heroku Managed Inference's chat completions API.

``stream_chat`` posts one chat completion request, decodes the server-sent events with httpx-sse and yields small
typed events. Every failure surfaces as an ``InferenceError`` whose ``user_message`` is safe to show a person.
Retries happen only before the first event is passed on, so a caller never sees text twice.
"""

import asyncio
import email.utils
import inspect
import json
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

import httpx
from django.conf import settings
from httpx_sse import EventSource, SSEError

from chat.inference import network


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call; ``arguments`` is the JSON text exactly as the model wrote it."""

    index: int
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str | None


Event = TextDelta | ReasoningDelta | ToolCall | Usage | Finish
RetryCallback = Callable[[int, int, float, "InferenceError"], Awaitable[None] | None]


class InferenceError(Exception):
    """Base of every failure. ``str(error)`` is for logs; ``user_message`` is for people."""

    user_message = "The model is unavailable right now. Please try again in a moment."

    def __init__(self, detail, *, user_message=None, status=None, retry_after=None, retryable=False):
        super().__init__(detail)
        if user_message:
            self.user_message = user_message
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


class RateLimited(InferenceError):
    user_message = "The model is busy right now (rate limit reached). Please try again shortly."

    def __init__(self, detail, **kwargs):
        kwargs.setdefault("retryable", True)
        super().__init__(detail, **kwargs)


class AuthError(InferenceError):
    user_message = "The model service refused this site's access key. Please tell the site's administrator."


class BadRequest(InferenceError):
    user_message = "The model could not accept this request."


class Unavailable(InferenceError):
    pass


MODEL_NOT_PROVISIONED = (
    "This site is not allowed to use the model it asked for (it may not be provisioned). "
    "Please tell the site's administrator."
)
NOT_FOUND = "The model service was not found at the configured address. Please tell the site's administrator."
UNREACHABLE = "The model service is unavailable: it could not be reached. Please try again."
TOO_SLOW = "The model took too long to start its reply. Please try again."
CUT_OFF = "The reply was cut off before it finished. Please try again."
UNREADABLE = "The model service sent a reply that could not be read. Please try again."
MAX_HEADER_DELAY = 60.0  # never trust a server to park a chat turn longer than this
BACKOFF_CAP = 20.0

# Indirection so tests can record delays instead of waiting them out.
_sleep = asyncio.sleep


def is_demo() -> bool:
    return not settings.INFERENCE_URL


def endpoint() -> tuple[str, str]:
    """(base_url, key) of the API; starts the in-process demo model on first use when no URL is configured."""
    if not is_demo():
        return settings.INFERENCE_URL, settings.INFERENCE_KEY
    from chat.standin.api import demo_server

    return demo_server().base_url, "demo"


# One pooled client per event loop: an httpx client is bound to the loop that first used it.
_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
_clients_lock = threading.Lock()


def _make_client() -> httpx.AsyncClient:
    pool = settings.INFERENCE_MAX_CONNECTIONS
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=min(pool, 100))
    # The pool runs on plain asyncio streams (chat/inference/network.py says why). Given a transport, httpx ignores
    # `limits` for it, so the transport takes them; httpx still applies them to proxies it mounts from the environment.
    return httpx.AsyncClient(limits=limits, transport=network.transport(limits))


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    with _clients_lock:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        client = _clients.get(loop)
        if client is None or client.is_closed:
            client = _clients[loop] = _make_client()
        return client


async def aclose_clients() -> None:
    """Close the clients of the running loop and forget those of loops that are gone."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        mine = [client for other, client in _clients.items() if other is loop]
        for other in [other for other in _clients if other is loop or other.is_closed()]:
            del _clients[other]
    for client in mine:
        await client.aclose()


def _timeout() -> httpx.Timeout:
    # Read per request so settings overrides apply to an already pooled client.
    return httpx.Timeout(
        connect=settings.INFERENCE_CONNECT_TIMEOUT, read=settings.INFERENCE_READ_TIMEOUT, write=30.0, pool=30.0
    )


def _request_body(messages, model, max_tokens, temperature, tools, tool_choice, extended_thinking) -> dict:
    body = {
        "model": model or settings.INFERENCE_MODEL_ID,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens or settings.INFERENCE_MAX_TOKENS,
    }
    if temperature is not None:
        body["temperature"] = temperature
    if tools:
        body["tools"] = tools
        # Newer Heroku docs default to "required" when tools are sent: never leave it implicit.
        body["tool_choice"] = tool_choice if tool_choice is not None else "auto"
    if extended_thinking:
        body["extended_thinking"] = extended_thinking
    return body


async def stream_chat(
    messages: list[dict],
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    tools: list[dict] | None = None,
    tool_choice=None,
    extended_thinking: dict | None = None,
    prompt_caching: bool = True,
    on_retry: RetryCallback | None = None,
    before_retry: Callable[[], Awaitable] | None = None,
) -> AsyncIterator[Event]:
    """Yield the reply as events: deltas as they come, then tool calls, usage and one Finish.

    Raises an InferenceError subclass. Rate limits, 5xx and connection failures are retried at most
    INFERENCE_MAX_RETRIES times, only before the first event; ``on_retry(attempt, max_retries, delay, error)``
    is called (and awaited if needed) before each wait, and ``before_retry()`` awaited after it, just before
    the request is sent again (the caller takes the retry's place in the shared upstream budget there).
    """
    body = _request_body(messages, model, max_tokens, temperature, tools, tool_choice, extended_thinking)
    base_url, key = endpoint() if not is_demo() else await asyncio.to_thread(endpoint)
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    if not prompt_caching:
        headers["X-Heroku-Prompt-Caching"] = "false"
    max_retries = settings.INFERENCE_MAX_RETRIES
    for attempt in range(max_retries + 1):
        passed_on = False
        try:
            async with aclosing(_attempt(f"{base_url}/v1/chat/completions", headers, body)) as events:
                async for event in events:
                    passed_on = True
                    yield event
            return
        except InferenceError as error:
            if passed_on or not error.retryable or attempt >= max_retries:
                raise
            delay = _retry_delay(error, attempt + 1)
            await _notify(on_retry, attempt + 1, max_retries, delay, error)
            await _sleep(delay)
            if before_retry is not None:
                await before_retry()


async def _notify(on_retry: RetryCallback | None, *args) -> None:
    if on_retry is not None:
        outcome = on_retry(*args)
        if inspect.isawaitable(outcome):
            await outcome


async def _attempt(url: str, headers: dict, body: dict) -> AsyncIterator[Event]:
    response = await _open(url, headers, body)
    try:
        if response.status_code != 200:
            await response.aread()
            raise _error_from_response(response, body["model"])
        async with aclosing(_read_events(response, body["model"])) as events:
            async for event in events:
                yield event
    finally:
        await response.aclose()


async def _open(url: str, headers: dict, body: dict) -> httpx.Response:
    client = _client()
    request = client.build_request("POST", url, headers=headers, json=body, timeout=_timeout())
    try:
        return await client.send(request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unavailable(f"cannot connect: {exc!r}", user_message=UNREACHABLE, retryable=True) from exc
    except httpx.TimeoutException as exc:
        # Not retried: a full read timeout already kept the person waiting for minutes.
        raise Unavailable(f"timed out before the reply started: {exc!r}", user_message=TOO_SLOW) from exc
    except httpx.HTTPError as exc:
        # The server hung up before any byte of a reply: as safe to repeat as a 5xx.
        raise Unavailable(f"no response: {exc!r}", retryable=True) from exc


async def _read_events(response: httpx.Response, model: str) -> AsyncIterator[Event]:
    reply = _ReplyState(model)
    done = False
    try:
        async with aclosing(EventSource(response).aiter_sse()) as sse_events:
            async for sse in sse_events:
                data = sse.data.strip()
                if data == "[DONE]":
                    done = True
                    break
                if data:
                    for event in _feed(reply, data):
                        yield event
    except SSEError as exc:
        raise Unavailable(f"not an event stream: {exc}", user_message=UNREADABLE) from exc
    except httpx.TimeoutException as exc:
        raise Unavailable(f"read timeout mid-reply: {exc!r}", user_message=CUT_OFF) from exc
    except httpx.HTTPError as exc:
        # A connection lost after the finish_reason only costs a late usage chunk.
        if reply.finish_reason is None:
            raise Unavailable(f"stream broken: {exc!r}", user_message=CUT_OFF) from exc
    for event in reply.finish(done):
        yield event


def _feed(reply: "_ReplyState", data: str) -> list[Event]:
    """The events of one SSE data field; anything not shaped like a chunk is a broken reply."""
    try:
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise TypeError("event is not a JSON object")
        return reply.feed(chunk)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise Unavailable(f"malformed event {data[:200]!r}: {exc}", user_message=UNREADABLE) from exc


class _ReplyState:
    """Accumulates one streamed reply: tool-call fragments by index, the latest usage, the finish reason."""

    def __init__(self, model: str):
        self.model = model
        self.tool_calls: dict[int, dict] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def feed(self, chunk: dict) -> list[Event]:
        if chunk.get("error") is not None:
            raise _error_from_payload(chunk["error"], None, {}, self.model, in_stream=True)
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        events = []
        for choice in chunk.get("choices") or []:
            events.extend(self._feed_delta(choice.get("delta") or {}))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _feed_delta(self, delta: dict) -> list[Event]:
        events = []
        reasoning = delta.get("reasoning")
        thinking = reasoning.get("thinking") if isinstance(reasoning, dict) else reasoning
        if isinstance(thinking, str) and thinking:
            events.append(ReasoningDelta(thinking))
        if isinstance(delta.get("content"), str) and delta["content"]:
            events.append(TextDelta(delta["content"]))
        for position, fragment in enumerate(delta.get("tool_calls") or []):
            self._feed_tool_fragment(position, fragment)
        return events

    def _feed_tool_fragment(self, position: int, fragment: dict) -> None:
        index = fragment.get("index", position)
        call = self.tool_calls.setdefault(index, {"id": "", "name": "", "arguments": []})
        function = fragment.get("function") or {}
        call["id"] = call["id"] or fragment.get("id") or ""
        call["name"] = call["name"] or function.get("name") or ""
        if function.get("arguments"):
            call["arguments"].append(function["arguments"])

    def finish(self, done: bool) -> list[Event]:
        if not done and self.finish_reason is None:
            raise Unavailable("stream ended without [DONE] or finish_reason", user_message=CUT_OFF)
        events: list[Event] = []
        for index in sorted(self.tool_calls):
            call = self.tool_calls[index]
            if not call["name"]:
                raise Unavailable(f"tool call {index} has no name", user_message=UNREADABLE)
            arguments = "".join(call["arguments"])
            events.append(ToolCall(index, call["id"] or f"call_{index}", call["name"], arguments))
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(self.finish_reason))
        return events


def _usage(raw: dict) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(prompt, completion, int(raw.get("total_tokens") or prompt + completion))


def _error_from_response(response: httpx.Response, model: str) -> InferenceError:
    try:
        payload = response.json().get("error")
    except (ValueError, AttributeError):
        payload = None
    if not isinstance(payload, dict):
        # Not Heroku's shape (a proxy's HTML page, say): worth a log line, not a message to a person.
        payload = {"raw": response.text[:200]}
    return _error_from_payload(payload, response.status_code, response.headers, model)


_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "authorization_error": 403,
    "rate_limit_error": 429,
    "server_error": 500,
}


def _error_from_payload(payload, status, headers, model: str, in_stream: bool = False) -> InferenceError:
    """The exception for an API error, from the HTTP status or, inside a stream, the error's code or type."""
    if not isinstance(payload, dict):
        payload = {"message": str(payload)}
    message = str(payload.get("message") or "").strip()[:300]
    if status is None:
        code = payload.get("code")
        status = code if isinstance(code, int) else _TYPE_STATUS.get(payload.get("type") or code, 500)
    detail = f"HTTP {status}{' in stream' if in_stream else ''}: {message or payload.get('raw') or 'no message'}"
    if status == 429:
        retry_after = _header_delay(headers)
        return RateLimited(detail, status=status, retry_after=retry_after, user_message=_busy(retry_after))
    if status == 401:
        return AuthError(detail, status=status)
    if status == 403:
        return AuthError(f"{detail} (model {model})", status=status, user_message=MODEL_NOT_PROVISIONED)
    if status == 404:
        return Unavailable(detail, status=status, user_message=NOT_FOUND)
    if 400 <= status < 500:
        text = f"The model could not accept this request: {message}" if message else None
        return BadRequest(detail, status=status, user_message=text)
    return Unavailable(detail, status=status, retry_after=_header_delay(headers, use_resets=False), retryable=True)


def _busy(retry_after: float | None) -> str | None:
    if retry_after is None:
        return None
    return f"The model is busy right now (rate limit reached). Please try again in {max(1, round(retry_after))} s."


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """Seconds in a reset header: ``51s``, ``1m30s``, ``200ms``, ``1h2m`` or a bare number; None if unreadable."""
    value = (value or "").strip().lower()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if _DURATION_PART.sub("", value):
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in _DURATION_PART.findall(value))


def _retry_after_seconds(value: str | None) -> float | None:
    seconds = parse_duration(value)
    if seconds is not None or not value:
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _header_delay(headers, use_resets: bool = True) -> float | None:
    """Retry-After if given, else (for a 429) the later reset of the budgets that ran out; capped.

    Every response carries the reset headers, so they mean "wait" only on a rate-limit refusal, and a budget
    with requests or tokens remaining does not hold a retry back.
    """
    delay = _retry_after_seconds(headers.get("retry-after"))
    if delay is None and use_resets:
        resets = {kind: parse_duration(headers.get(f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")}
        spent = [kind for kind in resets if headers.get(f"x-ratelimit-remaining-{kind}", "0").strip() == "0"]
        known = [resets[kind] for kind in spent or resets if resets[kind] is not None]
        delay = max(known) if known else None
    return None if delay is None else min(delay, MAX_HEADER_DELAY)


def _retry_delay(error: InferenceError, attempt: int) -> float:
    if error.retry_after is not None:
        return error.retry_after
    base = getattr(settings, "INFERENCE_RETRY_BASE_DELAY", 0.5)
    # Full jitter in the upper half keeps many clients that failed together from retrying together.
    return min(BACKOFF_CAP, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
