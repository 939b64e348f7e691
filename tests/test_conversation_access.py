"""Only its owner reads a conversation: another user gets a 404 from its page and its older messages, an
anonymous visitor the login page; and every URL of one conversation has such a test."""

import importlib

import pytest
from django.urls import reverse

from chat import urls as chat_urls
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db

# For each URL of chat/urls.py that names one conversation (or one of its messages or attachments), the test
# in which another user gets a 404 from it.
OWNERSHIP_TESTS = {
    "conversation": "test_conversation_access:test_another_user_gets_a_404_from_the_page_and_its_older_messages",
    "older": "test_conversation_access:test_another_user_gets_a_404_from_the_page_and_its_older_messages",
    "rename": "test_conversation_management:test_a_stranger_gets_a_404_and_nothing_changes",
    "pin": "test_conversation_management:test_a_stranger_gets_a_404_and_nothing_changes",
    "archive": "test_conversation_management:test_a_stranger_gets_a_404_and_nothing_changes",
    "delete": "test_conversation_management:test_a_stranger_gets_a_404_and_nothing_changes",
    "settings": "test_conversation_settings:test_another_user_gets_a_404",
    "export_md": "test_export_import:test_a_stranger_cannot_export",
    "export_json": "test_export_import:test_a_stranger_cannot_export",
    "feedback": "test_feedback:test_only_the_owner_can_rate",
    "attachment": "test_attachment_access:test_a_stranger_gets_a_404",
}


@pytest.fixture
def chat(alice):
    conv = Conversation.objects.create(owner=alice, title="Private matters")
    Message.objects.create(conversation=conv, role="user", content="secret question")
    Message.objects.create(conversation=conv, role="assistant", content="secret answer")
    return conv


def page_urls(conv):
    """The conversation page, and the older messages before its reply as the transcript asks for them."""
    reply = conv.messages.get(role="assistant")
    return [reverse("chat:conversation", args=[conv.public_id]),
            reverse("chat:older", args=[conv.public_id]) + f"?before={reply.public_id}"]


def test_the_owner_reads_the_page_and_its_older_messages(alice_client, chat):
    page, older = (alice_client.get(url) for url in page_urls(chat))
    assert page.status_code == 200 and "secret answer" in page.content.decode()
    assert older.status_code == 200 and "secret question" in older.json()["html"]


@pytest.mark.parametrize("persona", ["bob", "charlie"])
def test_another_user_gets_a_404_from_the_page_and_its_older_messages(client, request, chat, persona):
    client.force_login(request.getfixturevalue(persona))
    for url in page_urls(chat):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"secret" not in response.content and b"Private matters" not in response.content


def test_anonymous_is_sent_to_log_in_from_the_page_and_its_older_messages(client, chat):
    for url in page_urls(chat):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next=")
        assert b"secret" not in response.content


def test_every_url_of_one_conversation_has_an_ownership_test():
    named = {pattern.name for pattern in chat_urls.urlpatterns if pattern.pattern.converters}
    assert named == set(OWNERSHIP_TESTS)
    for location in set(OWNERSHIP_TESTS.values()):
        module, test = location.split(":")
        assert callable(getattr(importlib.import_module(f"tests.{module}"), test, None)), location
