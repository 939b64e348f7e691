"""The inference client on a reply that breaks: error events, cut and malformed streams; and the response is
closed on every way out (finished, cancelled, closed early, failed)."""

import asyncio

import pytest

from chat import inference
from chat.inference import Finish, RateLimited, TextDelta, Unavailable
from tests.fake_api import DONE, HELLO, chunk, collect, collect_until_error

pytestmark = pytest.mark.usefixtures("fresh_clients")


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
