"""The shared upstream budget in a turn: a reply waits its turn (and says so) rather than meeting a 429."""

import asyncio
import time

import pytest

from chat.standin.api import Reply
from tests.sockets import ask, frames_until, is_final, next_frame, send_frame, stored

pytestmark = pytest.mark.django_db(transaction=True)


def is_queued(frame):
    return frame["type"] == "status" and frame["detail"].startswith("Queued: the model's rate limit is reached")


async def test_a_reply_past_the_request_budget_waits_then_streams(socket, api, settings):
    settings.UPSTREAM_REQUESTS_PER_MINUTE = 1
    settings.UPSTREAM_WINDOW_SECONDS = 1.0
    api.enqueue(Reply(text="First"))
    api.enqueue(Reply(text="Second"))
    await ask(socket, "One")
    started = time.monotonic()
    frames = await ask(socket, "Two")
    queued = [f for f in frames if is_queued(f)]
    assert queued and "starting in about 1 s" in queued[0]["detail"]
    assert frames[-1]["message"]["status"] == "complete" and frames[-1]["message"]["content"] == "Second"
    assert time.monotonic() - started >= 0.5
    assert len(api.requests) == 2


async def test_stop_while_queued_sends_no_request(socket, conversation, api, settings):
    settings.UPSTREAM_REQUESTS_PER_MINUTE = 1
    settings.UPSTREAM_WINDOW_SECONDS = 30.0
    api.enqueue(Reply(text="First"))
    await ask(socket, "One")
    await socket.send_json_to(send_frame("Two"))
    await frames_until(socket, is_queued)
    await socket.send_json_to({"type": "stop"})
    final = (await frames_until(socket, is_final))[-1]["message"]
    assert (final["status"], final["content"]) == ("stopped", "")
    assert len(api.requests) == 1
    assert [m.status for m in await stored(conversation)] == ["complete", "complete", "complete", "stopped"]


async def test_reported_usage_replaces_the_estimate(socket, api, settings):
    # Each estimate (the reply's 1,000-token ceiling) fills the minute; the reported usage (a few tokens) frees it.
    settings.INFERENCE_MAX_TOKENS = 1000
    settings.UPSTREAM_TOKENS_PER_MINUTE = 1500
    settings.UPSTREAM_WINDOW_SECONDS = 60.0
    for text in ("First", "Second"):
        api.enqueue(Reply(text=text))
        frames = await ask(socket, f"Say {text}")
        assert not any(is_queued(f) for f in frames)
        assert frames[-1]["message"]["content"] == text
    assert len(api.requests) == 2


async def test_two_sockets_see_the_queue_status(socket, conversation, alice, api, settings):
    from tests.sockets import open_socket

    settings.UPSTREAM_REQUESTS_PER_MINUTE = 1
    settings.UPSTREAM_WINDOW_SECONDS = 30.0
    api.enqueue(Reply(text="First"))
    await ask(socket, "One")
    other, _ = await open_socket(conversation.public_id, alice)
    assert (await next_frame(other))["type"] == "ready"
    await socket.send_json_to(send_frame("Two"))
    await frames_until(other, is_queued)
    await other.send_json_to({"type": "stop"})
    assert (await frames_until(socket, is_final))[-1]["message"]["status"] == "stopped"
    await other.disconnect()
    await asyncio.sleep(0)


async def test_a_retry_takes_its_own_place_in_the_budget(socket, api, settings):
    from chat.standin.api import Fault

    settings.UPSTREAM_REQUESTS_PER_MINUTE = 2
    settings.UPSTREAM_WINDOW_SECONDS = 1.0
    settings.INFERENCE_MAX_RETRIES = 1
    settings.INFERENCE_RETRY_BASE_DELAY = 0.01
    api.inject(Fault("status", status=500))
    api.enqueue(Reply(text="After a retry"))
    api.enqueue(Reply(text="Second"))
    final = (await ask(socket, "One"))[-1]["message"]
    assert final["content"] == "After a retry", final

    # The failed attempt and its retry were two requests: the minute (here a second) is full.
    frames = await ask(socket, "Two")
    assert any(is_queued(f) for f in frames)
    assert frames[-1]["message"]["content"] == "Second" and len(api.requests) == 3
