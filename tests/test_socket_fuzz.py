"""Hostile and broken frames: the socket answers each with an error (or the documented close), stores nothing,
and keeps working."""

import asyncio
import json
import random
import string
import uuid

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from tests.sockets import next_frame

pytestmark = pytest.mark.django_db(transaction=True)

UUID = str(uuid.uuid4())
WRONG_VALUES = [None, True, 0, -1, 1.5, 10**30, "", "x" * 1000, [], [None], {}, {"a": 1}, "not-a-uuid", [UUID] * 30]
FIELDS = ["text", "client_id", "attachments", "id", "ids"]


def hostile_frames(rng):
    """Frames no client should send: the consumer must refuse every one of them."""
    yield ""
    yield "null"
    yield "[]"
    yield '"send"'
    yield "{"
    yield "[" * 100_000 + "]" * 100_000
    yield json.dumps({"type": "send", "text": "x" * 1_000_000, "client_id": UUID})
    yield json.dumps({"type": "x" * 10_000})
    yield json.dumps({"type": "__init__"})
    yield json.dumps({"type": "send\u0000"})
    yield json.dumps({"text": "no type"})
    for kind in (1, None, [], {}):
        yield json.dumps({"type": kind})
    for field in FIELDS:
        for value in WRONG_VALUES:
            frame = {"type": "send", "text": "hi", "client_id": UUID, field: value}
            if field in ("id", "ids"):
                frame = {"type": "sync" if field == "ids" else "stop", field: value, "text": value}
                if field == "id":
                    continue  # a stop with any id is a harmless no-op when nothing streams
            if frame.get("text") == "hi" and field not in ("text", "client_id", "attachments"):
                continue
            if (field == "attachments" and value in (None, [])) or (field == "text" and isinstance(value, str) and value):
                continue  # valid sends, which would be stored
            if field == "ids" and value == [UUID] * 30:
                continue  # a valid sync of unknown ids: answered with nothing
            yield json.dumps(frame)
    yield from version_frames()
    for _ in range(30):
        yield "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 200)))
    for _ in range(10):
        yield bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))).decode("latin-1")


def version_frames():
    """Edits, regenerates and version switches of messages that are not there, or with broken fields."""
    for kind in ("edit", "regenerate", "branch"):
        valid = {"type": kind, "id": UUID, "text": "hi", "client_id": UUID}
        yield json.dumps(valid)  # no such message in this conversation
        for field in ("id", "client_id", "text"):
            for value in WRONG_VALUES:
                if (kind, field) in {("branch", "client_id"), ("branch", "text"), ("regenerate", "text")}:
                    continue  # fields these frames do not read
                if field == "text" and isinstance(value, str) and value.strip():
                    continue  # a valid text: refused anyway, but for the unknown message
                yield json.dumps({**valid, field: value})


async def count_messages():
    return await database_sync_to_async(Message.objects.count)()


async def expect_alive(socket):
    await socket.send_json_to({"type": "ping"})
    assert await next_frame(socket) == {"type": "pong"}


@pytest.fixture
def no_rate_limit(settings):
    """Set before the socket connects (its bucket is made then): these tests are about content, not rate."""
    settings.CHAT_SOCKET_BURST = 10_000


async def test_hostile_frames_are_refused_and_nothing_is_stored(no_rate_limit, socket, settings):
    settings.CHAT_MAX_FRAME_BYTES = 200_000
    before = await count_messages()
    rng = random.Random(1234)
    frames = list(hostile_frames(rng))
    for text in frames:
        await socket.send_input({"type": "websocket.receive", "text": text})
        answer = await next_frame(socket)
        assert answer["type"] == "error", (text[:80], answer)
        assert answer["code"] in {"invalid", "too_long", "unknown_type"}
    await expect_alive(socket)
    assert await count_messages() == before


async def test_binary_frames_are_refused(no_rate_limit, socket):
    for payload in (b"", b"\x00\xff" * 100, json.dumps({"type": "ping"}).encode()):
        await socket.send_input({"type": "websocket.receive", "bytes": payload})
        assert (await next_frame(socket))["code"] == "invalid"
    await expect_alive(socket)


async def test_a_burst_then_refusal_then_recovery(socket, settings):
    burst = settings.CHAT_SOCKET_BURST
    for _ in range(burst + 3):
        await socket.send_json_to({"type": "ping"})
    answers = [(await next_frame(socket)).get("code") for _ in range(burst + 3)]
    # The bucket refills while the burst is read: a pong may slip in among the refusals.
    assert answers[:burst - 1] == [None] * (burst - 1) and answers.count("rate_limited") >= 2
    await asyncio.sleep(1.5 / settings.CHAT_SOCKET_RATE)
    await expect_alive(socket)


async def test_a_flood_is_refused_then_closed_with_4429(conversation, alice, api, settings):
    from tests.sockets import close_hub, open_socket

    settings.CHAT_SOCKET_BURST, settings.CHAT_SOCKET_RATE, settings.CHAT_SOCKET_FLOOD_CLOSE = 5, 0.001, 3
    comm, _ = await open_socket(conversation.public_id, alice)
    assert (await next_frame(comm))["type"] == "ready"
    before = await count_messages()
    for _ in range(5 + 3 + 1):
        await comm.send_json_to({"type": "send", "text": "spam", "client_id": "bad"})
    answers = [json.loads(await comm.receive_from()) for _ in range(5 + 3)]
    assert [a["code"] for a in answers] == ["invalid"] * 5 + ["rate_limited"] * 3
    assert (await comm.receive_output())["code"] == 4429
    assert await count_messages() == before
    await close_hub()
