"""A user's conversation downloaded as Markdown or JSON, and the JSON imported back as a new conversation.

Every version of every message travels in the JSON (edits and regenerated replies), with thinking and tool steps;
the Markdown holds what the user sees.
"""

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chat.transfer import importer
from chat.turns import records
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


CALCULATOR = {"id": "call_1", "name": "calculator", "arguments": '{"expression": "2+2"}', "result": "4",
              "is_error": False, "status": "done"}
CLOCK = {"id": "call_2", "name": "clock", "arguments": '{"timezone": "Mars/Base"}',
         "result": "clock failed: unknown time zone", "is_error": True, "status": "done"}


def turn(conv, text, answer, edit=None):
    """A user message (or a new version of ``edit``) and its finished reply, stored as the app stores them."""
    stored = records.start_turn_records(conv, text=text, client_id=uuid.uuid4(), model="claude", worker="", edit=edit)
    return stored.message, records.finish_reply(stored.reply.pk, content=answer, status="complete")


def regenerate(conv, reply, answer, **outcome):
    new = records.regenerate_records(conv, reply_id=reply.public_id, client_id=uuid.uuid4(), model="claude",
                                     worker="").reply
    return records.finish_reply(new.pk, content=answer, status="complete", **outcome)


@pytest.fixture
def versions(alice):
    """A question edited once, its reply regenerated with thinking and tool steps, then one more turn."""
    conv = Conversation.objects.create(owner=alice, title="Sums")
    typo, _ = turn(conv, "Waht is 2+2?", "Did you mean 2+2?")
    _, first = turn(conv, "What is 2+2?", "Four, I think.", edit=typo.public_id)
    regenerate(conv, first, "2 + 2 = 4.", reasoning="Add the two numbers.", tool_calls=[CALCULATOR, CLOCK],
               usage={"prompt_tokens": 30, "completion_tokens": 8})
    turn(conv, "Thanks", "You're welcome.")
    return conv


def tree(conv):
    """Every message with its parent (as a position in the list), flag and contents: equal for a faithful copy."""
    messages = list(conv.messages.all())
    position = {message.pk: n for n, message in enumerate(messages)}
    return [
        (position.get(m.parent_id), m.selected, m.role, m.content, m.reasoning, m.tool_calls, m.prompt_tokens)
        for m in messages
    ]


def seen(conv):
    """The visible conversation: each message's text and its place among its versions."""
    messages, _ = records.visible_messages(conv, size=100)
    return [(m.content, branch["index"], branch["count"]) for m, branch in messages]


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
    from chat.transfer import exporter

    return exporter.to_json(exporter.with_transcripts(Conversation.objects.filter(pk=conv.pk)))


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


def test_json_lists_every_version_and_the_path_the_user_sees(alice_client, versions):
    (conv,) = export(alice_client, versions, "json").json()["conversations"]
    by_id = {message["id"]: message for message in conv["messages"]}
    assert [by_id[key]["content"] for key in conv["path"]] == ["What is 2+2?", "2 + 2 = 4.", "Thanks",
                                                                "You're welcome."]
    assert [(m["content"], m["selected"]) for m in conv["messages"]] == [
        ("Waht is 2+2?", False), ("Did you mean 2+2?", True), ("What is 2+2?", True), ("Four, I think.", False),
        ("2 + 2 = 4.", True), ("Thanks", True), ("You're welcome.", True),
    ]
    typo, answer, fixed, first, second = conv["messages"][:5]
    assert (typo["parent"], fixed["parent"], answer["parent"]) == (None, None, typo["id"])
    assert first["parent"] == second["parent"] == fixed["id"]
    assert second["reasoning"] == "Add the two numbers." and first["reasoning"] == ""
    assert second["tool_calls"] == [
        {"id": "call_1", "name": "calculator", "arguments": '{"expression": "2+2"}', "result": "4", "is_error": False},
        {"id": "call_2", "name": "clock", "arguments": '{"timezone": "Mars/Base"}',
         "result": "clock failed: unknown time zone", "is_error": True},
    ]
    assert second["usage"] == {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38}


def test_markdown_shows_the_visible_conversation_with_thinking_and_tool_steps(alice_client, versions):
    body = export(alice_client, versions, "md").content.decode()
    assert "Waht" not in body and "Did you mean" not in body and "Four, I think." not in body
    assert "## User · version 2 of 2\n" in body and "## Assistant (claude) · version 2 of 2\n" in body
    assert "<details><summary>Thinking</summary>\n\nAdd the two numbers.\n\n</details>" in body
    assert "> Used calculator(2+2) → 4\n" in body
    assert "> clock(Mars/Base) failed: clock failed: unknown time zone\n" in body
    assert body.index("Add the two numbers.") < body.index("> Used calculator") < body.index("2 + 2 = 4.")
    assert body.index("2 + 2 = 4.") < body.index("Thanks") < body.index("You're welcome.")


def test_round_trip_keeps_versions_thinking_and_tool_steps(alice_client, versions):
    response = upload(alice_client, export(alice_client, versions, "json").content, **JSON)
    copy = Conversation.objects.get(public_id=response.json()["ids"][0])
    assert seen(copy) == seen(versions) == [
        ("What is 2+2?", 2, 2), ("2 + 2 = 4.", 2, 2), ("Thanks", 1, 1), ("You're welcome.", 1, 1)
    ]
    assert tree(copy) == tree(versions)


def test_switching_back_in_a_copy_restores_the_old_branch(alice_client, versions):
    copy_id = upload(alice_client, export(alice_client, versions, "json").content, **JSON).json()["ids"][0]
    copy = Conversation.objects.get(public_id=copy_id)
    records.select_version(copy, copy.messages.get(content="Waht is 2+2?").public_id)
    assert seen(copy) == [("Waht is 2+2?", 1, 2), ("Did you mean 2+2?", 1, 1)]


def test_a_version_1_file_is_imported_as_one_line(alice_client):
    document = {"format": "claude-chat.conversations", "version": 1, "conversations": [{"title": "Old", "messages": [
        {"id": "a", "role": "user", "content": "Hi"},
        {"id": "b", "role": "assistant", "content": "Hello", "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
        {"id": "c", "role": "user", "content": "Bye"},
    ]}]}
    response = upload(alice_client, document, **JSON)
    assert response.status_code == 201
    copy = Conversation.objects.get(public_id=response.json()["ids"][0])
    assert seen(copy) == [("Hi", 1, 1), ("Hello", 1, 1), ("Bye", 1, 1)]
    assert tree(copy) == [
        (None, True, "user", "Hi", "", [], None),
        (0, True, "assistant", "Hello", "", [], 3),
        (1, True, "user", "Bye", "", [], None),
    ]


def message(document, n):
    return document["conversations"][0]["messages"][n]


def with_steps(document, *steps):
    message(document, 1)["tool_calls"] = list(steps)
    return document


STEP = {"id": "call_1", "name": "calculator", "arguments": "{}", "result": "4", "is_error": False}


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda d: d.update(format="other"), "not a conversation export"),
        (lambda d: d.update(version=3), "Only version 1 and 2"),
        (lambda d: d.update(version=True), "Only version 1 and 2"),
        (lambda d: message(d, 1).update(reasoning=5), "message 2: reasoning must be a string"),
        (lambda d: message(d, 1).update(reasoning="x" * 200_001), "reasoning is longer than 200000"),
        (lambda d: message(d, 1).update(tool_calls="calculator"), "tool_calls must be a list of at most 50"),
        (lambda d: with_steps(d, *[STEP] * 51), "tool_calls must be a list of at most 50"),
        (lambda d: with_steps(d, "calculator"), "message 2, tool call 1 is not an object"),
        (lambda d: with_steps(d, {**STEP, "name": 7}), "tool call 1: name must be a string"),
        (lambda d: with_steps(d, STEP, {**STEP, "name": ""}), "tool call 2: name must not be empty"),
        (lambda d: with_steps(d, {**STEP, "arguments": {"x": 1}}), "arguments must be a string"),
        (lambda d: with_steps(d, {**STEP, "arguments": "x" * 20_001}), "arguments is longer than 20000"),
        (lambda d: with_steps(d, {**STEP, "result": 4}), "result must be a string"),
        (lambda d: with_steps(d, {**STEP, "is_error": "no"}), "is_error must be true or false"),
        (lambda d: message(d, 0).update(parent=message(d, 2)["id"]), "parent must be null or the id of an earlier"),
        (lambda d: message(d, 1).update(parent="nobody"), "parent must be null or the id of an earlier"),
        (lambda d: message(d, 1).update(parent=[1]), "parent must be null or the id of an earlier"),
        (lambda d: message(d, 1).update(id=message(d, 0)["id"]), "unique in its conversation"),
        (lambda d: message(d, 1).pop("id"), "message 2: id must be 1 to 100 characters"),
        (lambda d: message(d, 1).update(selected="yes"), "selected must be true or false"),
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
    monkeypatch.setattr(importer, "MAX_BYTES", 10)
    assert upload(alice_client, b"{}" * 10, **JSON).json() == {"error": importer.TOO_LARGE}
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
