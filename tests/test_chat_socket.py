"""The conversation socket: who may connect, sending, streaming, stopping, joining mid-reply, resending."""

import json
import uuid

import pytest

from chat.standin.api import Reply
from tests.sockets import (
    ask,
    close_hub,
    frames_until,
    is_final,
    next_frame,
    open_socket,
    send_frame,
    stored,
    wait_for_turns,
)

pytestmark = pytest.mark.django_db(transaction=True)

LONG_REPLY = " ".join(f"word{i}" for i in range(60))


async def test_anonymous_socket_is_closed_with_4401(conversation):
    comm, connected = await open_socket(conversation.public_id)
    assert (await comm.receive_output())["code"] == 4401
    await comm.disconnect()


async def test_strangers_conversation_is_closed_with_4404(conversation, charlie):
    comm, connected = await open_socket(conversation.public_id, charlie)
    assert (await comm.receive_output())["code"] == 4404
    await close_hub()


async def test_unknown_conversation_is_closed_with_4404(alice):
    comm, connected = await open_socket(uuid.uuid4(), alice)
    assert (await comm.receive_output())["code"] == 4404
    await close_hub()


@pytest.mark.parametrize("origin", [b"http://evil.example", None])
async def test_foreign_or_missing_origin_is_refused(conversation, alice, origin):
    comm, connected = await open_socket(conversation.public_id, alice, origin=origin)
    assert connected is False


async def test_ready_frame_says_which_model(conversation, alice, api, settings):
    comm, _ = await open_socket(conversation.public_id, alice)
    ready = await next_frame(comm)
    assert ready == {"type": "ready", "conversation": str(conversation.public_id), "demo": False,
                     "model": settings.INFERENCE_MODEL_ID}
    await comm.disconnect()
    await close_hub()


async def test_send_streams_deltas_then_stores_the_reply(socket, conversation, api):
    api.enqueue(Reply(text="Hello there, Alice. Here is a list:\n\n- one\n- two", chunk_size=5))
    client_id = uuid.uuid4()
    frames = await ask(socket, "Say hello", client_id)

    ack = frames[0]["message"]
    assert ack["role"] == "user" and ack["content"] == "Say hello" and ack["client_id"] == str(client_id)
    placeholder = frames[1]["message"]
    assert placeholder["role"] == "assistant" and placeholder["status"] == "streaming"
    assert {"type": "conversation", "id": str(conversation.public_id), "title": "Say hello"} in frames
    deltas = [f for f in frames if f["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(d["text"] for d in deltas) == "Hello there, Alice. Here is a list:\n\n- one\n- two"
    final = frames[-1]["message"]
    assert final["status"] == "complete" and final["seq"] == len(deltas)

    user, reply = await stored(conversation)
    assert (user.role, user.content, user.client_id) == ("user", "Say hello", client_id)
    assert (reply.role, reply.status, reply.content) == ("assistant", "complete", final["content"])
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.first_token_at is not None and reply.finished_at >= reply.first_token_at
    assert api.requests[-1]["body"]["messages"][-1] == {"role": "user", "content": "Say hello"}


async def test_history_is_sent_as_context(socket, conversation, api):
    api.enqueue(Reply(text="First answer"))
    await ask(socket, "First question")
    api.enqueue(Reply(text="Second answer"))
    await ask(socket, "Second question")
    sent = api.requests[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "First question"), ("assistant", "First answer"), ("user", "Second question")
    ]
    assert sent[0]["role"] == "system"


async def test_stop_keeps_the_text_so_far(socket, conversation, api):
    api.delay = 0.02
    api.enqueue(Reply(text=LONG_REPLY, chunk_size=6))
    await socket.send_json_to(send_frame("Talk for a while"))
    await frames_until(socket, lambda f: f["type"] == "delta")
    await socket.send_json_to({"type": "stop"})
    frames = await frames_until(socket, is_final)
    final = frames[-1]["message"]
    assert final["status"] == "stopped"
    assert 0 < len(final["content"]) < len(LONG_REPLY)
    assert LONG_REPLY.startswith(final["content"])
    reply = (await stored(conversation))[-1]
    assert (reply.status, reply.content) == ("stopped", final["content"])


async def test_second_socket_gets_snapshot_then_rest_without_gap(socket, conversation, alice, api):
    api.delay = 0.02
    api.enqueue(Reply(text=LONG_REPLY, chunk_size=5))
    await socket.send_json_to(send_frame("Long one please"))
    await frames_until(socket, lambda f: f["type"] == "delta" and f["seq"] >= 3)

    late, _ = await open_socket(conversation.public_id, alice)
    assert (await next_frame(late))["type"] == "ready"
    snapshot = (await next_frame(late))["message"]
    assert snapshot["status"] == "streaming" and snapshot["seq"] >= 3
    rest = await frames_until(late, is_final)
    deltas = [f for f in rest if f["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(deltas)))
    assert snapshot["content"] + "".join(d["text"] for d in deltas) == LONG_REPLY
    assert rest[-1]["message"]["content"] == LONG_REPLY
    await late.disconnect()


async def test_reply_completes_after_the_socket_closes(conversation, alice, api):
    api.delay = 0.01
    api.enqueue(Reply(text=LONG_REPLY, chunk_size=8))
    comm, _ = await open_socket(conversation.public_id, alice)
    await next_frame(comm)
    await comm.send_json_to(send_frame("Keep going without me"))
    await frames_until(comm, lambda f: f["type"] == "delta")
    await comm.disconnect()
    await wait_for_turns()
    reply = (await stored(conversation))[-1]
    assert (reply.status, reply.content) == ("complete", LONG_REPLY)
    await close_hub()


async def test_resend_with_same_client_id_is_stored_and_answered_once(socket, conversation, api):
    api.enqueue(Reply(text="Only once"))
    client_id = uuid.uuid4()
    await ask(socket, "Hello?", client_id)
    await socket.send_json_to(send_frame("Hello?", client_id))
    ack = await next_frame(socket)
    assert ack["type"] == "message" and ack["message"]["client_id"] == str(client_id)
    assert await socket.receive_nothing(timeout=0.3)
    messages = await stored(conversation)
    assert [(m.role, m.content) for m in messages] == [("user", "Hello?"), ("assistant", "Only once")]
    assert len(api.requests) == 1


async def test_send_while_streaming_is_refused_as_busy(socket, conversation, api):
    api.delay = 0.02
    api.enqueue(Reply(text=LONG_REPLY, chunk_size=5))
    await socket.send_json_to(send_frame("First"))
    await frames_until(socket, lambda f: f["type"] == "delta")
    second = uuid.uuid4()
    await socket.send_json_to(send_frame("Second", second))
    error = (await frames_until(socket, lambda f: f["type"] == "error"))[-1]
    assert error["code"] == "busy" and error["client_id"] == str(second)
    await socket.send_json_to({"type": "stop"})
    await frames_until(socket, is_final)
    assert [m.content for m in await stored(conversation) if m.role == "user"] == ["First"]


async def test_sync_returns_current_state(socket, conversation, api):
    api.enqueue(Reply(text="Synced"))
    final = (await ask(socket, "Hi"))[-1]["message"]
    await socket.send_json_to({"type": "sync", "ids": [final["id"]]})
    again = await next_frame(socket)
    assert again["message"]["content"] == "Synced" and again["message"]["status"] == "complete"


@pytest.mark.parametrize(
    "raw, code",
    [
        ("not json", "invalid"),
        ("[1, 2]", "invalid"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "send", "text": "hi"}), "invalid"),
        (json.dumps({"type": "send", "text": "   ", "client_id": str(uuid.uuid4())}), "invalid"),
        (json.dumps({"type": "sync", "ids": "nope"}), "invalid"),
    ],
)
async def test_bad_frames_get_an_error_and_store_nothing(socket, conversation, raw, code):
    await socket.send_to(text_data=raw)
    frame = await next_frame(socket)
    assert frame["type"] == "error" and frame["code"] == code and frame["message"]
    assert await stored(conversation) == []


async def test_text_over_the_limit_is_refused(socket, conversation, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    await socket.send_json_to(send_frame("x" * 11))
    frame = await next_frame(socket)
    assert frame["code"] == "too_long" and "10" in frame["message"]
    assert await stored(conversation) == []


async def test_ping_is_answered(socket):
    await socket.send_json_to({"type": "ping"})
    assert await next_frame(socket) == {"type": "pong"}
