"""The only code that speaks HTTP to Heroku Managed Inference's chat completions API.

``stream_chat`` posts one chat completion request to INFERENCE_URL, decodes the server-sent events with httpx-sse
and yields small typed events (chat/inference/events.py). Every failure surfaces as an ``InferenceError``
(chat/inference/errors.py) whose ``user_message`` is safe to show a person. Retries (chat/inference/retry.py)
happen only before the first event is passed on, so a caller never sees text twice.
"""

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing

import httpx
from django.conf import settings
from httpx_sse import EventSource, SSEError

from chat.inference import errors, network, retry
from chat.inference.body import Body
from chat.inference.errors import CUT_OFF, TOO_SLOW, UNREACHABLE, UNREADABLE, InferenceError, Unavailable
from chat.inference.events import Event
from chat.inference.reply import ReplyState, feed


def endpoint() -> tuple[str, str]:
    """(base_url, key) of the API, read per request: the demo model (chat/standin/demo.py) sets them at runtime."""
    if not settings.INFERENCE_URL:
        raise Unavailable("INFERENCE_URL is empty: no API configured and no demo model started in this process")
    return settings.INFERENCE_URL, settings.INFERENCE_KEY


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
    on_retry: retry.RetryCallback | None = None,
    before_retry: Callable[[], Awaitable] | None = None,
) -> AsyncIterator[Event]:
    """Yield the reply as events: deltas as they come, then tool calls, usage and one Finish.

    Raises an InferenceError subclass. Rate limits, 5xx and connection failures are retried at most
    INFERENCE_MAX_RETRIES times, only before the first event; ``on_retry(attempt, max_retries, delay, error)``
    is called (and awaited if needed) before each wait, and ``before_retry()`` awaited after it, just before
    the request is sent again (the caller takes the retry's place in the shared upstream budget there).
    """
    fields = _request_body(messages, model, max_tokens, temperature, tools, tool_choice, extended_thinking)
    # Images are written from storage as the body is sent (chat/inference/body.py): the body is rebuilt per attempt.
    body, model = Body(fields), fields["model"]
    base_url, key = endpoint()
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream", "Content-Type": "application/json",
               "Content-Length": str(len(body))}
    if not prompt_caching:
        headers["X-Heroku-Prompt-Caching"] = "false"
    max_retries = settings.INFERENCE_MAX_RETRIES
    for attempt in range(max_retries + 1):
        passed_on = False
        try:
            async with aclosing(_attempt(f"{base_url}/v1/chat/completions", headers, body, model)) as events:
                async for event in events:
                    passed_on = True
                    yield event
            return
        except InferenceError as error:
            if passed_on or not error.retryable or attempt >= max_retries:
                raise
            await retry.back_off(error, attempt + 1, max_retries, on_retry, before_retry)


async def _attempt(url: str, headers: dict, body: Body, model: str) -> AsyncIterator[Event]:
    response = await _open(url, headers, body)
    try:
        if response.status_code != 200:
            await response.aread()
            raise errors.from_response(response, model)
        async with aclosing(_read_events(response, model)) as events:
            async for event in events:
                yield event
    finally:
        await response.aclose()


async def _open(url: str, headers: dict, body: Body) -> httpx.Response:
    client = _client()
    request = client.build_request("POST", url, headers=headers, content=body.stream(), timeout=_timeout())
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
    reply = ReplyState(model)
    done = False
    try:
        async with aclosing(EventSource(response).aiter_sse()) as sse_events:
            async for sse in sse_events:
                data = sse.data.strip()
                if data == "[DONE]":
                    done = True
                    break
                if data:
                    for event in feed(reply, data):
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
