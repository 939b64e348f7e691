"""The inference client over real HTTP to the stand-in API: streaming, timeouts, refused and dropped connections."""

import asyncio

import pytest

from chat.inference import Finish, TextDelta, Unavailable, Usage
from chat.standin.api import Fault, Reply
from tests.fake_api import collect, collect_until_error
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("fresh_clients")


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
    settings.INFERENCE_URL = f"http://127.0.0.1:{free_port()}"
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
