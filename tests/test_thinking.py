"""Extended thinking: asked for with a valid budget when the conversation has it on, streamed apart from the
answer, stored and rendered separately."""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.standin.api import Reply
from tests.sockets import ask, frames_until, is_final, send_frame, stored

pytestmark = pytest.mark.django_db(transaction=True)


async def think(conversation, budget=None, max_tokens=None):
    conversation.thinking, conversation.thinking_budget, conversation.max_tokens = True, budget, max_tokens
    await database_sync_to_async(conversation.save)()


async def test_thinking_is_requested_streamed_and_stored_apart_from_the_answer(socket, conversation, api):
    await think(conversation, budget=1500, max_tokens=4000)
    api.enqueue(Reply(text="The answer is **42**.", reasoning="First, recall the guide. Then answer.", chunk_size=6))

    frames = await ask(socket, "Meaning of life?", uuid.uuid4())

    body = api.requests[-1]["body"]
    assert body["extended_thinking"] == {"enabled": True, "budget_tokens": 1500, "include_reasoning": True}
    assert body["max_tokens"] == 4000
    deltas = [frame for frame in frames if frame["type"] == "delta"]
    assert "".join(d.get("reasoning", "") for d in deltas) == "First, recall the guide. Then answer."
    assert "".join(d["text"] for d in deltas) == "The answer is **42**."
    final = frames[-1]["message"]
    assert final["reasoning"] == "First, recall the guide. Then answer."
    assert final["reasoning_html"] == "<p>First, recall the guide. Then answer.</p>\n"
    assert final["content"] == "The answer is **42**." and "recall" not in final["html"]

    _, reply = await stored(conversation)
    assert reply.reasoning == "First, recall the guide. Then answer." and reply.content == "The answer is **42**."


async def test_the_operators_budget_applies_when_the_conversation_sets_none(socket, conversation, api, settings):
    settings.CHAT_THINKING_BUDGET = 1024
    await think(conversation)
    api.enqueue(Reply(text="Fine."))

    await ask(socket, "Hi", uuid.uuid4())

    assert api.requests[-1]["body"]["extended_thinking"]["budget_tokens"] == 1024


async def test_without_thinking_nothing_is_asked_or_stored(socket, conversation, api):
    api.enqueue(Reply(text="Plain.", reasoning="This is never sent unless asked for."))

    frames = await ask(socket, "Hi", uuid.uuid4())

    assert "extended_thinking" not in api.requests[-1]["body"]
    assert frames[-1]["message"]["reasoning"] == "" and frames[-1]["message"]["reasoning_html"] == ""
    _, reply = await stored(conversation)
    assert reply.reasoning == ""


async def test_a_joining_socket_gets_the_thinking_so_far(conversation, alice, api, socket):
    from tests.sockets import next_frame, open_socket

    await think(conversation)
    api.enqueue(Reply(text=" ".join(["word"] * 200), reasoning="Thinking hard about it.", chunk_size=4))
    api.delay = 0.01
    await socket.send_json_to(send_frame("Long one", uuid.uuid4()))
    await frames_until(socket, lambda f: f["type"] == "delta" and f["text"])

    late, _ = await open_socket(conversation.public_id, alice)
    assert (await next_frame(late))["type"] == "ready"
    snapshot = (await next_frame(late))["message"]
    assert snapshot["status"] == "streaming" and snapshot["reasoning"] == "Thinking hard about it."
    await late.disconnect()
    await frames_until(socket, is_final, timeout=20)
