"""Per-user quotas: messages a minute and tokens a day, refused with a clear `quota` error, staff exempt."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Conversation, Message
from chat.standin.api import Reply
from chat.turns import records
from tests.sockets import ask, next_frame, send_frame, stored

pytestmark = pytest.mark.django_db(transaction=True)


def send(conversation, text="Hello", estimated_tokens=100):
    return records.start_turn_records(conversation, text=text, client_id=uuid.uuid4(), model="m", worker="",
                                    estimated_tokens=estimated_tokens)


def finish(reply, prompt=0, completion=0):
    records.finish_reply(reply.pk, content="done", status=Message.Status.COMPLETE,
                       usage={"prompt_tokens": prompt, "completion_tokens": completion})


def test_messages_per_minute(conversation, settings):
    settings.CHAT_USER_MESSAGES_PER_MINUTE = 2
    for _ in range(2):
        finish(send(conversation).reply)
    with pytest.raises(records.QuotaExceeded, match="limit is 2 a minute"):
        send(conversation)
    assert Message.objects.count() == 4


def test_the_minute_slides(conversation, settings):
    settings.CHAT_USER_MESSAGES_PER_MINUTE = 1
    finish(send(conversation).reply)
    with pytest.raises(records.QuotaExceeded):
        send(conversation)
    Message.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    stored = send(conversation, text="A minute later")
    assert stored.created and stored.reply.status == Message.Status.STREAMING
    assert Message.objects.filter(content="A minute later").exists()


def test_messages_in_every_conversation_count(alice, settings):
    settings.CHAT_USER_MESSAGES_PER_MINUTE = 1
    first, second = Conversation.objects.create(owner=alice), Conversation.objects.create(owner=alice)
    finish(send(first).reply)
    with pytest.raises(records.QuotaExceeded):
        send(second)


def test_tokens_per_day_count_usage_and_streaming_estimates(alice, settings):
    settings.CHAT_USER_TOKENS_PER_DAY = 1000
    first, second, third = (Conversation.objects.create(owner=alice) for _ in range(3))
    finish(send(first).reply, prompt=300, completion=200)
    send(second, estimated_tokens=499)  # still streaming: its estimate counts
    send(third, estimated_tokens=1)
    with pytest.raises(records.QuotaExceeded, match="today's allowance"):
        send(Conversation.objects.create(owner=alice))


def test_yesterdays_tokens_do_not_count(conversation, settings):
    settings.CHAT_USER_TOKENS_PER_DAY = 1000
    finish(send(conversation).reply, prompt=900, completion=900)
    with pytest.raises(records.QuotaExceeded, match="today's allowance"):
        send(conversation)
    yesterday = timezone.now().replace(hour=0, minute=0) - timedelta(minutes=1)
    Message.objects.update(created_at=yesterday)
    stored = send(conversation, text="A new day")
    assert stored.created and stored.reply.status == Message.Status.STREAMING
    assert Message.objects.filter(content="A new day").exists()


def test_staff_are_exempt_unless_configured(bob, settings):
    settings.CHAT_USER_MESSAGES_PER_MINUTE = 1
    conversation = Conversation.objects.create(owner=bob)
    for _ in range(3):
        finish(send(conversation).reply)
    settings.CHAT_QUOTA_EXEMPT_STAFF = False
    with pytest.raises(records.QuotaExceeded):
        send(conversation)


def test_a_resend_is_not_counted_twice(conversation, settings):
    settings.CHAT_USER_MESSAGES_PER_MINUTE = 1
    client_id = uuid.uuid4()
    reply = records.start_turn_records(conversation, text="Hi", client_id=client_id, model="m", worker="").reply
    finish(reply)
    assert records.start_turn_records(conversation, text="Hi", client_id=client_id, model="m", worker="").created is False


async def test_the_socket_answers_with_a_quota_error(socket, conversation, api, settings):
    settings.CHAT_USER_MESSAGES_PER_MINUTE = 1
    api.enqueue(Reply(text="Fine"))
    await ask(socket, "One")
    client_id = uuid.uuid4()
    await socket.send_json_to(send_frame("Two", client_id))
    error = await next_frame(socket)
    assert error == {"type": "error", "code": "quota", "client_id": str(client_id),
                     "message": "Too many messages: the limit is 1 a minute. Please wait a moment and send again."}
    assert [m.content for m in await stored(conversation)] == ["One", "Fine"]


async def test_the_reply_records_its_estimate(socket, conversation, api, settings):
    settings.INFERENCE_MAX_TOKENS = 1000
    api.enqueue(Reply(text="Fine"))
    await ask(socket, "Estimate me")
    reply = (await stored(conversation))[-1]
    assert reply.estimated_tokens > 1000 and reply.prompt_tokens > 0
