"""Every way the inference API can fail: the user message stays, the reply is stored with a readable error."""

import pytest

from chat.standin.api import Fault, Reply
from tests.servers import free_port
from tests.sockets import ask, stored

pytestmark = pytest.mark.django_db(transaction=True)

PARTIAL = "This reply starts fine and then"


@pytest.mark.parametrize(
    "fault, expected",
    [
        (Fault("status", status=401), "key"),
        (Fault("status", status=403), "not"),
        (Fault("status", status=429, headers={"retry-after": "7"}), "busy"),
        (Fault("status", status=500), "unavailable"),
        (Fault("status", status=503), "unavailable"),
        (Fault("status", status=400, body={"error": {"code": 400, "message": "temperature too hot",
                                                     "type": "invalid_request_error"}}), "temperature too hot"),
        (Fault("drop"), "unavailable"),
    ],
    ids=["401", "403", "429", "500", "503", "400", "dropped"],
)
async def test_failure_before_the_stream(socket, conversation, api, fault, expected):
    api.inject(fault)
    final = (await ask(socket, "Will this work?"))[-1]["message"]
    assert final["status"] == "error"
    assert expected in final["error"].lower()
    user, reply = await stored(conversation)
    assert (user.content, user.status) == ("Will this work?", "complete")
    assert (reply.status, reply.error) == ("error", final["error"])


@pytest.mark.parametrize("kind", ["cut", "malformed", "error_event"])
async def test_failure_mid_stream_keeps_the_partial_text(socket, conversation, api, kind):
    api.enqueue(Reply(text=PARTIAL + " falls over half way through the sentence.", chunk_size=4))
    api.inject(Fault(kind, chunks=8))
    frames = await ask(socket, "Tell me something")
    final = frames[-1]["message"]
    assert final["status"] == "error" and final["error"]
    assert final["content"] and PARTIAL.startswith(final["content"][: len(PARTIAL)])
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == final["content"]
    user, reply = await stored(conversation)
    assert user.content == "Tell me something"
    assert (reply.status, reply.content) == ("error", final["content"])


async def test_timeout_before_the_first_byte(socket, conversation, api, settings):
    settings.INFERENCE_READ_TIMEOUT = 0.3
    api.inject(Fault("delay_first_byte", seconds=1.0))
    final = (await ask(socket, "Slow model"))[-1]["message"]
    assert final["status"] == "error" and "too long" in final["error"].lower()
    assert [m.status for m in await stored(conversation)] == ["complete", "error"]


async def test_connection_refused(socket, conversation, api, settings):
    settings.INFERENCE_URL = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    final = (await ask(socket, "Anyone there?"))[-1]["message"]
    assert final["status"] == "error" and "unavailable" in final["error"].lower()
    assert [m.content for m in await stored(conversation)][0] == "Anyone there?"


async def test_server_error_then_success_is_retried_before_any_text(socket, conversation, api, settings):
    settings.INFERENCE_MAX_RETRIES = 2
    settings.INFERENCE_RETRY_BASE_DELAY = 0.01
    api.inject(Fault("status", status=500))
    api.enqueue(Reply(text="Second time lucky"))
    frames = await ask(socket, "Retry me")
    assert any(f["type"] == "status" and "retrying" in f["detail"].lower() for f in frames)
    assert frames[-1]["message"]["status"] == "complete"
    assert frames[-1]["message"]["content"] == "Second time lucky"
    assert len(api.requests) == 2


# A 429 with no Retry-After and no usable reset time (the stand-in always sends the x-ratelimit-* set, so the
# fault blanks the resets): the client must fall back to exponential backoff, not give up or spin.
NO_HINTS = {"x-ratelimit-reset-requests": "", "x-ratelimit-reset-tokens": ""}


async def test_rate_limit_without_headers_backs_off_then_succeeds(socket, conversation, api, settings):
    settings.INFERENCE_MAX_RETRIES = 3
    settings.INFERENCE_RETRY_BASE_DELAY = 0.05
    api.inject(Fault("status", status=429, headers=NO_HINTS))
    api.inject(Fault("status", status=429, headers=NO_HINTS))
    api.enqueue(Reply(text="Patience pays"))
    frames = await ask(socket, "Busy?")
    retries = [f["detail"] for f in frames if f["type"] == "status"]
    assert len(retries) == 2 and "(1/3)" in retries[0] and "(2/3)" in retries[1]
    assert frames[-1]["message"]["status"] == "complete"
    assert frames[-1]["message"]["content"] == "Patience pays"
    assert len(api.requests) == 3


@pytest.mark.parametrize("kind", ["cut", "error_event"])
async def test_a_stream_that_fails_after_text_is_not_retried(socket, conversation, api, settings, kind):
    # Retrying would send the user a second, different beginning after the first: only the error is safe.
    settings.INFERENCE_MAX_RETRIES = 3
    settings.INFERENCE_RETRY_BASE_DELAY = 0.01
    api.enqueue(Reply(text=PARTIAL + " and then the connection goes.", chunk_size=4))
    api.inject(Fault(kind, chunks=5))
    frames = await ask(socket, "Once only")
    assert not any(f["type"] == "status" for f in frames)
    assert frames[-1]["message"]["status"] == "error" and frames[-1]["message"]["content"]
    assert len(api.requests) == 1


async def test_slow_first_byte_within_the_timeout_is_waited_for(socket, conversation, api, settings):
    settings.INFERENCE_READ_TIMEOUT = 2.0
    api.inject(Fault("delay_first_byte", seconds=0.5))
    api.enqueue(Reply(text="Worth the wait"))
    final = (await ask(socket, "Think first"))[-1]["message"]
    assert (final["status"], final["content"]) == ("complete", "Worth the wait")
    assert len(api.requests) == 1
