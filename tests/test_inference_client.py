"""The inference client: SSE decoding on hand-made byte chunks, failures, retries, and a real stand-in."""

import asyncio
import json
import socket

import pytest

from chat import inference
from chat.standin.api import Fault, Reply
from chat.inference import (
    AuthError,
    BadRequest,
    Finish,
    RateLimited,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Unavailable,
    Usage,
)
from tests.fake_api import DONE, chunk, sse

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
async def _close_shared_clients():
    yield
    await inference.aclose_clients()


async def collect(**kwargs):
    return [event async for event in inference.stream_chat(HELLO, **kwargs)]


async def collect_until_error():
    """Events received before the stream raised, and the exception."""
    received = []
    with pytest.raises(inference.InferenceError) as caught:
        async for event in inference.stream_chat(HELLO):
            received.append(event)
    return received, caught.value


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- decoding -----------------------------------------------------------------------------------------------


async def test_a_line_split_across_reads(canned):
    whole = chunk({"content": "Hello, world"})
    canned.add([whole[:17], whole[17:40], whole[40:], chunk(finish_reason="stop"), DONE])
    assert await collect() == [TextDelta("Hello, world"), Finish("stop")]


async def test_a_utf8_character_split_across_reads(canned):
    whole = chunk({"content": "café ☕"})
    cup = whole.index("☕".encode())
    canned.add([whole[: cup + 1], whole[cup + 1 : cup + 2], whole[cup + 2 :], chunk(finish_reason="stop"), DONE])
    assert await collect() == [TextDelta("café ☕"), Finish("stop")]


async def test_data_without_a_space_and_crlf_lines(canned):
    body = chunk({"content": "tight"}).replace(b"data: ", b"data:").replace(b"\n", b"\r\n")
    canned.add([b": keep-alive comment\n\n", body, chunk(finish_reason="stop"), b"data:[DONE]\n\n"])
    assert await collect() == [TextDelta("tight"), Finish("stop")]


async def test_usage_is_taken_from_whichever_chunk_carries_it(canned):
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    trailer = sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage})
    canned.add([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}), chunk(finish_reason="stop"),
                trailer, DONE])
    assert await collect() == [TextDelta("Hi"), Usage(12, 3, 15), Finish("stop")]


async def test_reasoning_deltas_come_before_the_text(canned):
    canned.add([chunk({"reasoning": {"thinking": "Think"}}), chunk({"reasoning": {"thinking": "ing."}}),
                chunk({"content": "Answer"}), chunk(finish_reason="stop"), DONE])
    assert await collect() == [ReasoningDelta("Think"), ReasoningDelta("ing."), TextDelta("Answer"), Finish("stop")]


async def test_parallel_tool_call_fragments_are_accumulated_by_index(canned):
    def fragment(index, arguments, **first):
        call = {"index": index, "function": {"arguments": arguments}}
        if first:
            call.update(id=first["id"], type="function")
            call["function"]["name"] = first["name"]
        return chunk({"tool_calls": [call]})

    usage = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}
    canned.add([
        chunk({"content": "Checking both."}),
        fragment(0, "", id="toolu_a", name="get_weather"),
        fragment(1, '{"ci', id="toolu_b", name="get_time"),
        fragment(0, '{"city": '),
        fragment(1, 'ty": "Oslo"}'),
        fragment(0, '"Paris"}'),
        chunk(finish_reason="tool_calls", usage=usage),
        DONE,
    ])
    assert await collect() == [
        TextDelta("Checking both."),
        ToolCall(0, "toolu_a", "get_weather", '{"city": "Paris"}'),
        ToolCall(1, "toolu_b", "get_time", '{"city": "Oslo"}'),
        Usage(30, 20, 50),
        Finish("tool_calls"),
    ]


async def test_a_whole_tool_call_in_one_chunk(canned):
    call = {"index": 0, "id": "toolu_x", "type": "function", "function": {"name": "roll", "arguments": "{}"}}
    canned.add([chunk({"tool_calls": [call]}, finish_reason="tool_calls"), DONE])
    assert await collect() == [ToolCall(0, "toolu_x", "roll", "{}"), Finish("tool_calls")]


async def test_the_request_sent(canned):
    canned.add([chunk(finish_reason="stop"), DONE])
    tools = [{"type": "function", "function": {"name": "roll", "parameters": {"type": "object"}}}]
    await collect(tools=tools, prompt_caching=False, extended_thinking={"enabled": True, "budget_tokens": 1024})
    request = canned.requests[0]
    assert str(request.url) == "http://inference.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer inf-test-key"
    assert request.headers["x-heroku-prompt-caching"] == "false"
    assert json.loads(request.content) == {
        "model": "claude-4-5-sonnet", "messages": HELLO, "stream": True, "max_tokens": 4096,
        "tools": tools, "tool_choice": "auto", "extended_thinking": {"enabled": True, "budget_tokens": 1024},
    }


async def test_only_given_options_are_sent(canned):
    canned.add([chunk(finish_reason="stop"), DONE])
    await collect(model="claude-4-5-haiku", max_tokens=100, temperature=0.2)
    assert "x-heroku-prompt-caching" not in canned.requests[0].headers
    assert json.loads(canned.requests[0].content) == {
        "model": "claude-4-5-haiku", "messages": HELLO, "stream": True, "max_tokens": 100, "temperature": 0.2,
    }


# --- failures inside the stream ------------------------------------------------------------------------------


async def test_an_error_object_in_the_stream(canned, slept):
    error = {"error": {"code": 500, "message": "overloaded", "type": "server_error"}}
    canned.add([chunk({"content": "Par"}), chunk(**error)])
    received, failure = await collect_until_error()
    assert received == [TextDelta("Par")]
    assert isinstance(failure, Unavailable) and failure.status == 500
    assert len(canned.requests) == 1 and slept == []


async def test_a_rate_limit_error_event_before_any_text_is_retried(canned, slept):
    canned.add([chunk(error={"code": 429, "message": "slow down", "type": "rate_limit_error"})])
    canned.add([chunk({"content": "ok"}, finish_reason="stop"), DONE])
    assert await collect() == [TextDelta("ok"), Finish("stop")]
    assert len(slept) == 1


async def test_a_stream_cut_before_done(canned):
    canned.add([chunk({"content": "Half a"}), chunk({"content": " sentence"})])
    received, failure = await collect_until_error()
    assert received == [TextDelta("Half a"), TextDelta(" sentence")]
    assert isinstance(failure, Unavailable) and "cut off" in failure.user_message


async def test_a_finish_without_done_is_complete(canned):
    canned.add([chunk({"content": "Done"}), chunk(finish_reason="stop")])
    assert await collect() == [TextDelta("Done"), Finish("stop")]


async def test_a_malformed_event(canned):
    canned.add([chunk({"content": "Fine"}), b"data: {not json\n\n"])
    received, failure = await collect_until_error()
    assert received == [TextDelta("Fine")]
    assert isinstance(failure, Unavailable) and "could not be read" in failure.user_message


async def test_no_retry_once_text_was_passed_on(canned, slept):
    canned.add([chunk({"content": "Already shown"}), chunk(error={"code": 429, "type": "rate_limit_error"})])
    canned.add([chunk({"content": "Would repeat"}, finish_reason="stop"), DONE])
    received, failure = await collect_until_error()
    assert received == [TextDelta("Already shown")]
    assert isinstance(failure, RateLimited) and failure.retryable
    assert len(canned.requests) == 1 and slept == []


# --- failures before the stream ------------------------------------------------------------------------------


def heroku_error(status, message, kind):
    return {"error": {"code": status, "message": message, "type": kind}}


@pytest.mark.parametrize(
    "status, kind, error_class, words",
    [
        (401, "authentication_error", AuthError, "access key"),
        (403, "authorization_error", AuthError, "provisioned"),
        (400, "invalid_request_error", BadRequest, "temperature must be at most 1"),
    ],
)
async def test_client_errors_are_never_retried(canned, slept, status, kind, error_class, words):
    canned.add_error(status, heroku_error(status, "temperature must be at most 1", kind))
    received, failure = await collect_until_error()
    assert received == [] and type(failure) is error_class
    assert failure.status == status and words in failure.user_message
    assert len(canned.requests) == 1 and slept == []


async def test_401_and_403_say_different_things(canned):
    canned.add_error(401, heroku_error(401, "bad key", "authentication_error"))
    canned.add_error(403, heroku_error(403, "not provisioned", "authorization_error"))
    _, unauthenticated = await collect_until_error()
    _, unauthorized = await collect_until_error()
    assert unauthenticated.user_message != unauthorized.user_message


@pytest.mark.parametrize(
    "headers, delay",
    [
        ({"retry-after": "3"}, 3.0),
        ({"x-ratelimit-reset-requests": "12s", "x-ratelimit-reset-tokens": "250ms"}, 12.0),
        ({"x-ratelimit-reset-requests": "200ms", "x-ratelimit-reset-tokens": "1m5s"}, 60.0),  # capped
        ({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "40s",
          "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "5s"}, 5.0),  # only the spent budget
    ],
)
async def test_429_waits_as_the_headers_say_then_succeeds(canned, slept, headers, delay):
    canned.add_error(429, heroku_error(429, "too many requests", "rate_limit_error"), headers)
    canned.add([chunk({"content": "Made it"}, finish_reason="stop"), DONE])
    calls = []

    async def on_retry(attempt, max_retries, wait, error):
        calls.append((attempt, max_retries, wait, type(error), error.retry_after))

    assert await collect(on_retry=on_retry) == [TextDelta("Made it"), Finish("stop")]
    assert slept == [delay]
    assert calls == [(1, 2, delay, RateLimited, delay)]


async def test_429_gives_up_after_the_allowed_retries(canned, slept):
    for _ in range(3):
        canned.add_error(429, heroku_error(429, "too many", "rate_limit_error"), {"retry-after": "2"})
    received, failure = await collect_until_error()
    assert isinstance(failure, RateLimited) and failure.retry_after == 2.0
    assert "2 s" in failure.user_message
    assert len(canned.requests) == 3 and slept == [2.0, 2.0]


async def test_5xx_backs_off_exponentially_with_jitter(canned, slept, settings):
    settings.INFERENCE_RETRY_BASE_DELAY = 0.5
    canned.add_error(500, heroku_error(500, "internal", "server_error"))
    canned.add_error(502, b"<html>Bad gateway</html>")
    canned.add([chunk({"content": "Recovered"}, finish_reason="stop"), DONE])
    seen = []
    assert await collect(on_retry=lambda *args: seen.append(args[3].status)) == [
        TextDelta("Recovered"), Finish("stop")
    ]
    assert seen == [500, 502]
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0


@pytest.mark.parametrize(
    "text, seconds",
    [("51s", 51.0), ("1m30s", 90.0), ("200ms", 0.2), ("1h2m", 3720.0), ("2.5", 2.5), ("soon", None), ("", None)],
)
def test_reset_header_durations(text, seconds):
    assert inference.parse_duration(text) == seconds


# --- real HTTP to the stand-in -------------------------------------------------------------------------------


async def test_streams_from_the_stand_in(stand_in):
    stand_in.fake.enqueue(Reply(text="Hello over HTTP", chunk_size=3))
    events = await collect()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello over HTTP"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 5
    assert isinstance(events[-2], Usage) and events[-1] == Finish("stop")
    assert stand_in.fake.requests[0]["headers"]["authorization"] == "Bearer demo"


async def test_read_timeout_before_the_first_byte(stand_in, settings, slept):
    settings.INFERENCE_READ_TIMEOUT = 0.1
    stand_in.fake.inject(Fault("delay_first_byte", seconds=0.4))
    received, failure = await collect_until_error()
    assert isinstance(failure, Unavailable) and "too long" in failure.user_message
    assert len(stand_in.fake.requests) == 1 and slept == []
    # The abandoned request wakes up after the client left: it must not take the next request's reply.
    stand_in.fake.enqueue(Reply(text="for the next request"))
    await asyncio.sleep(0.5)
    assert [e.text for e in await collect() if isinstance(e, TextDelta)] == ["for ", "the ", "next ", "request"]


async def test_connection_refused(settings, slept):
    settings.INFERENCE_URL = f"http://127.0.0.1:{closed_port()}"
    settings.INFERENCE_MAX_RETRIES = 2
    received, failure = await collect_until_error()
    assert isinstance(failure, Unavailable) and "unavailable" in failure.user_message
    assert len(slept) == 2


@pytest.mark.parametrize("kind", ["cut", "malformed", "error_event"])
async def test_stand_in_faults_mid_stream(stand_in, kind):
    stand_in.fake.enqueue(Reply(text="one two three four five six"))
    stand_in.fake.inject(Fault(kind, chunks=3))
    received, failure = await collect_until_error()
    assert received == [TextDelta("one "), TextDelta("two ")]
    assert isinstance(failure, Unavailable)


async def test_a_5xx_is_retried_without_waiting_for_the_rate_limit_window(stand_in, slept):
    stand_in.fake.inject(Fault("status", status=503))
    stand_in.fake.enqueue(Reply(text="back"))
    assert [e for e in await collect() if isinstance(e, TextDelta)] == [TextDelta("back")]
    assert slept == [0.0]  # the reset headers ride on every response: only a 429 makes them a wait


async def test_a_dropped_connection_is_retried(stand_in, slept):
    stand_in.fake.inject(Fault("drop"))
    stand_in.fake.enqueue(Reply(text="second try"))
    events = await collect()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["second ", "try"]
    assert len(stand_in.fake.requests) == 2 and len(slept) == 1


# --- closing the response ------------------------------------------------------------------------------------


async def test_cancelling_the_consumer_closes_the_response(canned):
    stream = canned.add([chunk({"content": "First"}), None])
    first = asyncio.Event()

    async def consume():
        async for _ in inference.stream_chat(HELLO):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    await asyncio.sleep(0.01)  # the consumer is now blocked inside the stream, waiting for bytes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed


async def test_closing_the_generator_closes_the_response(canned):
    stream = canned.add([chunk({"content": "First"}), None])
    events = inference.stream_chat(HELLO)
    assert await anext(events) == TextDelta("First")
    assert not stream.closed
    await events.aclose()
    assert stream.closed


async def test_an_error_closes_the_response(canned):
    stream = canned.add([chunk({"content": "x"}), b"data: {not json\n\n", None])
    await collect_until_error()
    assert stream.closed


# --- the built-in demo ---------------------------------------------------------------------------------------


async def test_without_a_url_the_demo_model_answers(settings):
    from chat.standin.api import demo_server

    settings.INFERENCE_URL = ""
    demo = demo_server()
    demo.app.delay, paced = 0.0, demo.app.delay
    try:
        assert inference.is_demo() and inference.endpoint() == (demo.base_url, "demo")
        events = [event async for event in inference.stream_chat([{"role": "user", "content": "Who are you?"}])]
    finally:
        demo.app.delay = paced
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "offline demo model" in text and "> Who are you?" in text
    assert events[-1] == Finish("stop") and demo_server() is demo
