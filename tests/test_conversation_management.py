"""Rename, pin, archive and delete a conversation; only its owner can, and the sidebar reflects it."""

import pytest
from django.urls import reverse

from chat.models import Attachment, Conversation, ImageBlob, Message
from tests.uploads import draft

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}
ENDPOINTS = ["chat:rename", "chat:pin", "chat:archive", "chat:delete"]


@pytest.fixture
def chat(alice):
    conv = Conversation.objects.create(owner=alice, title="Trip to Lisbon")
    Message.objects.create(conversation=conv, role="user", content="hello")
    return conv


def post(client, name, conv, data=None, **extra):
    return client.post(reverse(name, args=[conv.public_id]), data or {}, **extra)


def sidebar_titles(client):
    page = client.get(reverse("chat:index"))
    return [c.title for c in page.context["conversations"]]


def test_rename_strips_and_answers_json(alice_client, chat):
    response = post(alice_client, "chat:rename", chat, {"title": "  Lisbon   in spring "}, **JSON)
    assert response.status_code == 200
    assert response.json()["title"] == "Lisbon in spring"
    chat.refresh_from_db()
    assert chat.title == "Lisbon in spring"


@pytest.mark.parametrize("title", ["", "   ", "x" * 121])
def test_rename_rejects_an_empty_or_long_title(alice_client, chat, title):
    response = post(alice_client, "chat:rename", chat, {"title": title}, **JSON)
    assert response.status_code == 400
    assert response.json() == {"error": "A title needs 1 to 120 characters."}
    chat.refresh_from_db()
    assert chat.title == "Trip to Lisbon"


def test_a_plain_form_post_redirects(alice_client, chat):
    response = post(alice_client, "chat:rename", chat, {"title": "New"})
    assert response.status_code == 302 and response["Location"] == chat.get_absolute_url()


def test_renaming_does_not_reorder_the_sidebar(alice, alice_client, chat):
    newer = Conversation.objects.create(owner=alice, title="Newer")
    post(alice_client, "chat:rename", chat, {"title": "Renamed"}, **JSON)
    assert sidebar_titles(alice_client) == ["Newer", "Renamed"]
    listed = alice_client.get(reverse("chat:index")).context["conversations"]
    assert [c.pk for c in listed] == [newer.pk, chat.pk]


def test_pinned_conversations_come_first(alice, alice_client, chat):
    Conversation.objects.create(owner=alice, title="Newer")
    assert post(alice_client, "chat:pin", chat, **JSON).json()["pinned"] is True
    assert sidebar_titles(alice_client) == ["Trip to Lisbon", "Newer"]
    page = alice_client.get(reverse("chat:index")).content.decode()
    assert page.index('id="pinned-list"') < page.index("Trip to Lisbon") < page.index('id="conversation-list"')
    assert post(alice_client, "chat:pin", chat, {"pinned": "0"}, **JSON).json()["pinned"] is False
    assert sidebar_titles(alice_client) == ["Newer", "Trip to Lisbon"]


def test_archived_conversations_leave_the_sidebar_for_the_archived_page(alice_client, chat):
    post(alice_client, "chat:pin", chat, **JSON)
    body = post(alice_client, "chat:archive", chat, **JSON).json()
    assert body["archived"] is True and body["pinned"] is False
    assert sidebar_titles(alice_client) == []
    archived = alice_client.get(reverse("chat:archived")).content.decode()
    assert "Trip to Lisbon" in archived and "Unarchive" in archived
    response = post(alice_client, "chat:archive", chat, {"archived": "0"})
    assert response.status_code == 302
    assert sidebar_titles(alice_client) == ["Trip to Lisbon"]
    assert alice_client.get(chat.get_absolute_url()).status_code == 200


def test_delete_removes_messages_attachments_and_orphaned_images(alice, alice_client, chat):
    photo = draft(alice)
    photo.message = chat.messages.get()
    photo.save()
    response = post(alice_client, "chat:delete", chat, **JSON)
    assert response.status_code == 200 and response.json()["redirect"] == reverse("chat:index")
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    assert not Message.objects.filter(conversation_id=chat.pk).exists()
    assert not Attachment.objects.exists() and not ImageBlob.objects.exists()


def test_delete_by_form_redirects_home(alice_client, chat):
    response = post(alice_client, "chat:delete", chat)
    assert response.status_code == 302 and response["Location"] == reverse("chat:index")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_a_stranger_gets_a_404_and_nothing_changes(client, charlie, chat, name):
    client.force_login(charlie)
    assert post(client, name, chat, {"title": "Hacked", "pinned": "1", "archived": "1"}, **JSON).status_code == 404
    chat.refresh_from_db()
    assert (chat.title, chat.pinned_at, chat.archived_at) == ("Trip to Lisbon", None, None)
    assert chat.messages.count() == 1


@pytest.mark.parametrize("name", ENDPOINTS)
def test_get_is_not_allowed(alice_client, chat, name):
    assert alice_client.get(reverse(name, args=[chat.public_id])).status_code == 405


@pytest.mark.parametrize("name", ENDPOINTS)
def test_anonymous_is_sent_to_log_in(client, chat, name):
    response = post(client, name, chat)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_archived_page_lists_only_ones_own(client, charlie, alice_client, chat):
    post(alice_client, "chat:archive", chat, **JSON)
    client.force_login(charlie)
    assert "Trip to Lisbon" not in client.get(reverse("chat:archived")).content.decode()


def test_the_chat_page_has_the_menu_scripts_and_dialogs(alice_client, chat):
    page = alice_client.get(chat.get_absolute_url()).content.decode()
    assert 'id="confirm-delete"' in page and 'id="shortcuts-dialog"' in page
    assert "<script>" not in page  # strict CSP: the page's only scripts are files
