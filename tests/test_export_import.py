"""A user's conversation downloaded as Markdown or JSON, and the JSON imported back as a new conversation."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chat import imports
from chat.models import Attachment, Conversation, Message
from tests.uploads import draft, png

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def chat(alice):
    conv = Conversation.objects.create(owner=alice, title="Sourdough")
    Message.objects.create(conversation=conv, role="user", content="How long to proof?")
    Message.objects.create(conversation=conv, role="assistant", content="About **4 hours**.", model="claude",
                           prompt_tokens=12, completion_tokens=5)
    Message.objects.create(conversation=conv, role="assistant", content="Half", status="stopped")
    return conv


def export(client, conv, extension):
    return client.get(reverse(f"chat:export_{extension}", args=[conv.public_id]))


def upload(client, content, name="chat.json", **extra):
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    return client.post(reverse("chat:import"), {"file": SimpleUploadedFile(name, data)}, **extra)


def test_markdown_download(alice_client, chat):
    response = export(alice_client, chat, "md")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="sourdough-')
    body = response.content.decode()
    assert body.startswith("# Sourdough\n") and "About **4 hours**." in body


def test_json_round_trip_creates_a_new_conversation_with_the_same_messages(alice, alice_client, chat):
    document = export(alice_client, chat, "json")
    assert document["Content-Disposition"].endswith('.json"')
    response = upload(alice_client, document.content, **JSON)
    assert response.status_code == 201
    copy = Conversation.objects.get(public_id=response.json()["ids"][0])
    assert copy.pk != chat.pk and copy.owner == alice and copy.title == "Sourdough"
    fields = ("role", "content", "status", "model", "prompt_tokens", "completion_tokens")
    assert list(copy.messages.values_list(*fields)) == list(chat.messages.values_list(*fields))
    assert not set(copy.messages.values_list("public_id", flat=True)) & set(
        chat.messages.values_list("public_id", flat=True)
    )


def test_a_plain_form_import_redirects_to_the_new_conversation(alice_client, chat):
    response = upload(alice_client, export(alice_client, chat, "json").content)
    assert response.status_code == 302
    assert response["Location"] == Conversation.objects.latest("id").get_absolute_url()


def test_ids_and_owner_in_the_file_are_not_trusted(alice, charlie, client, chat):
    document = json.loads(imports_document(chat))
    client.force_login(charlie)
    response = upload(client, document, **JSON)
    copy = Conversation.objects.get(public_id=response.json()["ids"][0])
    assert copy.owner == charlie and str(copy.public_id) != document["conversations"][0]["id"]
    chat.refresh_from_db()
    assert chat.owner == alice and chat.messages.count() == 3


def imports_document(conv):
    from chat import exports

    return exports.to_json(exports.with_transcripts(Conversation.objects.filter(pk=conv.pk)))


def with_image(document, sha):
    document["conversations"][0]["messages"][0]["attachments"] = [
        {"id": "x", "sha256": sha, "url": None, "filename": "photo.png", "content_type": "image/png",
         "width": 1, "height": 1}
    ]
    return document


def test_an_image_is_relinked_only_for_someone_who_owns_it(alice, charlie, client, alice_client, chat):
    photo = draft(alice, png(colour="red"))
    sha = photo.blob.sha256
    document = with_image(json.loads(imports_document(chat)), sha)
    mine = upload(alice_client, document, **JSON).json()
    assert mine["notes"] == []
    copy = Conversation.objects.get(public_id=mine["ids"][0])
    assert Attachment.objects.get(message__conversation=copy).blob_id == photo.blob_id
    client.force_login(charlie)
    theirs = upload(client, document, **JSON).json()
    assert theirs["notes"] == ["1 image(s) were not imported: only images you uploaded here can be re-linked."]
    assert not Attachment.objects.filter(owner=charlie).exists()


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda d: d.update(format="other"), "not a conversation export"),
        (lambda d: d.update(version=2), "Only version 1"),
        (lambda d: d.update(conversations=[]), "1 to 50 conversations"),
        (lambda d: d["conversations"][0].update(title=7), "title must be a string"),
        (lambda d: d["conversations"][0].update(title="x" * 121), "title is longer than 120"),
        (lambda d: d["conversations"][0]["messages"][0].update(role="system"), 'role must be "user" or "assistant"'),
        (lambda d: d["conversations"][0]["messages"][0].update(status="done"), "unknown status"),
        (lambda d: d["conversations"][0]["messages"][0].update(content=None), "content must be a string"),
        (lambda d: d["conversations"][0]["messages"][1]["usage"].update(prompt_tokens=-1), "whole number"),
        (lambda d: with_image(d, "../etc/passwd"), "sha256 must be 64"),
        (lambda d: d["conversations"][0].update(messages="nope"), '"messages" must be a list'),
    ],
)
def test_bad_files_get_a_clear_400_and_create_nothing(alice_client, chat, mutate, error):
    document = json.loads(imports_document(chat))
    mutate(document)
    before = Conversation.objects.count(), Message.objects.count()
    response = upload(alice_client, document, **JSON)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert (Conversation.objects.count(), Message.objects.count()) == before


def test_not_json_oversized_and_missing_files(alice_client, settings, monkeypatch):
    assert upload(alice_client, b"\xff\xfe not json", **JSON).json() == {"error": "The file is not valid JSON."}
    monkeypatch.setattr(imports, "MAX_BYTES", 10)
    assert upload(alice_client, b"{}" * 10, **JSON).json() == {"error": imports.TOO_LARGE}
    response = alice_client.post(reverse("chat:import"), {}, **JSON)
    assert response.status_code == 400 and "Choose an exported" in response.json()["error"]
    assert not Conversation.objects.exists()


def test_a_rejected_form_import_shows_the_reason_on_the_chat_page(alice_client):
    response = upload(alice_client, b"nope", follow=True)
    assert "The file is not valid JSON." in response.content.decode()


def test_a_streaming_reply_is_imported_as_interrupted(alice_client, chat):
    document = json.loads(imports_document(chat))
    document["conversations"][0]["messages"][1]["status"] = "streaming"
    copy = Conversation.objects.get(public_id=upload(alice_client, document, **JSON).json()["ids"][0])
    assert list(copy.messages.values_list("status", flat=True)) == ["complete", "interrupted", "stopped"]


@pytest.mark.parametrize("extension", ["md", "json"])
def test_a_stranger_cannot_export(client, charlie, chat, extension):
    client.force_login(charlie)
    assert export(client, chat, extension).status_code == 404


def test_export_and_import_need_a_login(client, chat):
    assert export(client, chat, "json").status_code == 302
    assert upload(client, b"{}").status_code == 302


def test_the_chat_page_links_the_downloads(alice_client, chat):
    page = alice_client.get(chat.get_absolute_url()).content.decode()
    assert reverse("chat:export_md", args=[chat.public_id]) in page
    assert reverse("chat:export_json", args=[chat.public_id]) in page
