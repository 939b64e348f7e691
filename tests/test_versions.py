"""Versions of messages: regenerate a reply, edit a user message, switch between the versions.

Every version is kept (the conversation is a tree, chat/tree.py); the visible conversation is one path
through it and every watcher is sent the new path as a ``history`` frame.
"""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.standin.api import Reply
from chat.models import Attachment, Conversation, ImageBlob, Message
from tests.sockets import frames_until, is_final, next_frame, open_socket, send_frame
from tests.uploads import draft

pytestmark = pytest.mark.django_db(transaction=True)


async def turn(socket, api, text, answer, **frame):
    api.enqueue(Reply(text=answer))
    await socket.send_json_to({**send_frame(text), **frame})
    return await frames_until(socket, is_final)


async def act(socket, frame):
    await socket.send_json_to({"client_id": str(uuid.uuid4()), **frame})
    return await frames_until(socket, is_final)


def history(frames):
    (found,) = [frame for frame in frames if frame["type"] == "history"]
    return found["messages"]


def contents(messages):
    return [message["content"] for message in messages]


@database_sync_to_async
def visible(conversation):
    from chat.turns import records

    messages, _ = records.visible_messages(conversation, size=100)
    return [message.content for message, _ in messages]


async def test_regenerate_adds_a_version_and_keeps_the_old_one(socket, conversation, api):
    first = (await turn(socket, api, "Hi", "First answer"))[-1]["message"]
    api.enqueue(Reply(text="Second answer"))

    frames = await act(socket, {"type": "regenerate", "id": first["id"]})

    shown = history(frames)
    assert contents(shown) == ["Hi", ""] and shown[-1]["status"] == "streaming"
    assert shown[-1]["branch"] == {"index": 2, "count": 2, "previous": first["id"], "next": None}
    final = frames[-1]["message"]
    assert final["content"] == "Second answer" and final["branch"]["index"] == 2
    # The model was asked the same question again, without the old answer.
    assert api.requests[-1]["body"]["messages"][-1] == {"role": "user", "content": "Hi"}
    assert await visible(conversation) == ["Hi", "Second answer"]
    replies = await database_sync_to_async(list)(conversation.messages.filter(role="assistant").order_by("id"))
    assert [(r.content, r.selected) for r in replies] == [("First answer", False), ("Second answer", True)]
    assert replies[0].parent_id == replies[1].parent_id


async def test_switching_back_shows_the_old_version_and_the_conversation_continues_from_it(socket, conversation, api):
    first = (await turn(socket, api, "Hi", "First answer"))[-1]["message"]
    api.enqueue(Reply(text="Second answer"))
    second = (await act(socket, {"type": "regenerate", "id": first["id"]}))[-1]["message"]

    await socket.send_json_to({"type": "branch", "id": first["id"]})
    shown = (await next_frame(socket))["messages"]

    assert contents(shown) == ["Hi", "First answer"]
    assert shown[-1]["branch"] == {"index": 1, "count": 2, "previous": None, "next": second["id"]}
    await turn(socket, api, "And then?", "More")
    assert api.requests[-1]["body"]["messages"][1:] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "And then?"},
    ]
    assert await visible(conversation) == ["Hi", "First answer", "And then?", "More"]


async def test_edit_starts_a_new_branch_and_switching_back_restores_the_old_one(socket, conversation, api):
    q1 = (await turn(socket, api, "Question one", "Answer one"))[0]["message"]
    await turn(socket, api, "Question two", "Answer two")
    api.enqueue(Reply(text="Answer to the edit"))

    frames = await act(socket, {"type": "edit", "id": q1["id"], "text": "Question one, better"})

    shown = history(frames)
    assert contents(shown) == ["Question one, better", ""]
    assert shown[0]["branch"] == {"index": 2, "count": 2, "previous": q1["id"], "next": None}
    assert api.requests[-1]["body"]["messages"][1:] == [{"role": "user", "content": "Question one, better"}]
    assert await visible(conversation) == ["Question one, better", "Answer to the edit"]

    await socket.send_json_to({"type": "branch", "id": q1["id"]})
    restored = (await next_frame(socket))["messages"]
    assert contents(restored) == ["Question one", "Answer one", "Question two", "Answer two"]


async def test_an_edit_keeps_the_images_of_the_message(socket, conversation, alice, api):
    photo = await database_sync_to_async(draft)(alice)
    frames = await turn(socket, api, "Look", "A teal square", attachments=[str(photo.public_id)])
    original = frames[0]["message"]
    api.enqueue(Reply(text="Still teal"))

    frames = await act(socket, {"type": "edit", "id": original["id"], "text": "Look again"})

    edited = history(frames)[0]
    assert len(edited["attachments"]) == 1 and edited["attachments"][0]["id"] != original["attachments"][0]["id"]
    parts = api.requests[-1]["body"]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "Look again"} and parts[1]["type"] == "image_url"
    # Both versions share the stored bytes; deleting the conversation deletes them with the last one.
    assert await database_sync_to_async(ImageBlob.objects.count)() == 1
    await database_sync_to_async(Conversation.objects.filter(pk=conversation.pk).delete)()
    assert await database_sync_to_async(Attachment.objects.count)() == 0
    assert await database_sync_to_async(ImageBlob.objects.count)() == 0


async def test_every_watcher_sees_the_new_version(socket, conversation, alice, api):
    first = (await turn(socket, api, "Hi", "First answer"))[-1]["message"]
    other, _ = await open_socket(conversation.public_id, alice)
    assert (await next_frame(other))["type"] == "ready"

    await socket.send_json_to({"type": "branch", "id": first["id"]})
    assert (await next_frame(other))["type"] == "history"
    api.enqueue(Reply(text="Again"))
    await act(socket, {"type": "regenerate", "id": first["id"]})
    frames = await frames_until(other, is_final)
    assert contents(history(frames)) == ["Hi", ""] and frames[-1]["message"]["content"] == "Again"
    await other.disconnect()


async def test_a_resent_regenerate_writes_one_reply(socket, conversation, api):
    first = (await turn(socket, api, "Hi", "First answer"))[-1]["message"]
    api.enqueue(Reply(text="Once"))
    client_id = str(uuid.uuid4())
    await act(socket, {"type": "regenerate", "id": first["id"], "client_id": client_id})

    await socket.send_json_to({"type": "regenerate", "id": first["id"], "client_id": client_id})
    again = await next_frame(socket)

    assert again["type"] == "message" and again["message"]["content"] == "Once"
    assert await socket.receive_nothing(timeout=0.3)
    assert await database_sync_to_async(conversation.messages.filter(role="assistant").count)() == 2


async def refused(socket, frame):
    await socket.send_json_to(frame)
    answer = await next_frame(socket)
    assert answer["type"] == "error"
    return answer


@pytest.mark.parametrize("kind", ["regenerate", "edit"])
async def test_versions_of_the_wrong_kind_or_of_other_conversations_are_refused(socket, conversation, alice, bob,
                                                                                kind, api):
    frames = await turn(socket, api, "Hi", "Hello")
    user, reply = frames[0]["message"], frames[-1]["message"]
    wrong = reply if kind == "edit" else user
    others = await database_sync_to_async(Conversation.objects.create)(owner=bob, title="Bob's")
    bobs = await database_sync_to_async(Message.objects.create)(conversation=others, role=wrong["role"], content="x")
    mine = await database_sync_to_async(Conversation.objects.create)(owner=alice, title="Other")
    elsewhere = await database_sync_to_async(Message.objects.create)(conversation=mine, role=wrong["role"], content="y")

    for target in (wrong["id"], str(bobs.public_id), str(elsewhere.public_id), str(uuid.uuid4())):
        client_id = str(uuid.uuid4())
        answer = await refused(socket, {"type": kind, "id": target, "text": "New", "client_id": client_id})
        assert (answer["code"], answer["client_id"]) == ("invalid", client_id)
    answer = await refused(socket, {"type": kind, "id": "not-a-uuid", "text": "New", "client_id": str(uuid.uuid4())})
    assert answer["code"] == "invalid"
    assert await database_sync_to_async(conversation.messages.count)() == 2


async def test_an_empty_or_oversized_edit_is_refused(socket, conversation, api, settings):
    user = (await turn(socket, api, "Hi", "Hello"))[0]["message"]
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    assert (await refused(socket, {"type": "edit", "id": user["id"], "text": "  ", "client_id": str(uuid.uuid4())}))[
        "code"] == "invalid"
    assert (await refused(socket, {"type": "edit", "id": user["id"], "text": "x" * 11,
                                   "client_id": str(uuid.uuid4())}))["code"] == "too_long"
    assert await database_sync_to_async(conversation.messages.count)() == 2


async def test_nothing_changes_version_while_a_reply_streams(socket, conversation, api):
    first = await turn(socket, api, "Hi", "Hello")
    user, reply = first[0]["message"], first[-1]["message"]
    api.enqueue(Reply(text=" ".join(["slow"] * 300)))
    api.delay = 0.02
    await socket.send_json_to(send_frame("Long one"))
    await frames_until(socket, lambda f: f["type"] == "delta")

    for frame in ({"type": "regenerate", "id": reply["id"], "client_id": str(uuid.uuid4())},
                  {"type": "edit", "id": user["id"], "text": "x", "client_id": str(uuid.uuid4())},
                  {"type": "branch", "id": reply["id"]}):
        answer = await socket_error(socket, frame)
        assert answer["code"] == "busy"
    await socket.send_json_to({"type": "stop"})
    await frames_until(socket, is_final)
    assert await database_sync_to_async(conversation.messages.count)() == 4


async def socket_error(socket, frame):
    await socket.send_json_to(frame)
    return (await frames_until(socket, lambda f: f["type"] == "error"))[-1]


async def test_the_page_shows_the_visible_versions_and_a_search_result_opens_its_branch(socket, conversation, api,
                                                                                        alice_client):
    first = (await turn(socket, api, "Hi", "The old answer"))[-1]["message"]
    api.enqueue(Reply(text="The new answer"))
    await act(socket, {"type": "regenerate", "id": first["id"]})

    page = (await database_sync_to_async(alice_client.get)(conversation.get_absolute_url())).content.decode()
    assert "The new answer" in page and "The old answer" not in page

    page = (await database_sync_to_async(alice_client.get)(conversation.get_absolute_url(), {"at": first["id"]}))
    page = page.content.decode()
    assert "The old answer" in page and "The new answer" not in page


async def test_a_reconnected_page_asks_for_the_visible_conversation(socket, conversation, api):
    first = (await turn(socket, api, "Hi", "First answer"))[-1]["message"]
    api.enqueue(Reply(text="Second answer"))
    await act(socket, {"type": "regenerate", "id": first["id"]})

    await socket.send_json_to({"type": "history"})
    answer = await next_frame(socket)

    assert answer["type"] == "history" and answer["has_older"] is False
    assert contents(answer["messages"]) == ["Hi", "Second answer"]


async def test_history_frames_carry_the_owners_vote(socket, conversation, alice, api):
    from chat.models import Feedback

    first = (await turn(socket, api, "Hi", "First answer"))[-1]["message"]
    reply = await database_sync_to_async(Message.objects.get)(public_id=first["id"])
    await database_sync_to_async(Feedback.objects.create)(message=reply, user=alice, rating=-1)

    await socket.send_json_to({"type": "history"})
    shown = (await next_frame(socket))["messages"]

    assert [message.get("rating", "none") for message in shown] == ["none", -1]
