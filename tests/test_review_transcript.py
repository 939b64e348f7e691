"""A transcript in the review console, as a reviewer reads and exports it: read-only, audited, every version."""

import json

import pytest
from django.urls import reverse

from chat.models import Feedback, ReviewMark, TranscriptView
from chat.review import console
from tests import admin_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich(alice, charlie):
    conv = h.conversation(alice, "Rich transcript")
    h.message(conv, "user", "Show me <script>alert(1)</script> and **bold**")
    h.message(conv, "assistant", "```python\nprint('hi')\n```\n\n[x](javascript:alert(1))", model="claude-4-5-sonnet",
              prompt=123, completion=45, ttft=0.5, duration=2.25, finish_reason="stop")
    question = h.message(conv, "user", "And this picture?")
    h.image(question, filename="holiday.png")
    failed = h.message(conv, "assistant", "Partial", status="error", error="The model is overloaded.")
    h.feedback(failed, alice, Feedback.Rating.DOWN, "Broke halfway")
    ReviewMark.objects.create(message=failed, reviewer=None, note="Known outage")
    return conv


def test_transcript_reads_like_the_chat(rita_client, rich):
    response = rita_client.get(h.transcript_url(rich))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Rich transcript</h1>" in html
    # Rendered and sanitised: Markdown applied, script shown as text, unsafe link dropped.
    assert "<strong>bold</strong>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert 'href="javascript' not in html
    assert 'class="codehilite"' in html and "chat/highlight.css" in html
    # Per-message usage and the outcome.
    assert "123 in / 45 out" in html
    assert "0.50 s" in html and "2.25 s" in html
    assert "The model is overloaded." in html
    assert "Broke halfway" in html and "Known outage" in html
    # Images, each message addressable.
    assert "holiday.png" in html
    for message in rich.messages.all():
        assert f'id="m-{message.public_id}"' in html


def test_transcript_image_uses_the_attachment_url_when_routed(rita_client, rich):
    attachment = rich.messages.get(content="And this picture?").attachments.get()
    html = rita_client.get(h.transcript_url(rich)).content.decode()
    url = console.exporter.attachment_url(attachment)
    if url is None:
        assert 'class="chat-missing-image"' in html
    else:
        assert f'<img src="{url}"' in html


def test_opening_a_transcript_is_audited(rita_client, rita, rich):
    rita_client.get(h.transcript_url(rich))
    rita_client.get(h.transcript_url(rich))
    views = TranscriptView.objects.filter(conversation=rich)
    assert views.count() == 2
    assert {(v.viewer, v.viewer_username, v.action, v.conversation_public_id) for v in views} == {
        (rita, "rita", "view", rich.public_id)
    }


def test_transcript_is_read_only(rita_client, sam, client, rich):
    assert rita_client.post(h.transcript_url(rich), {"title": "changed"}).status_code == 405
    client.force_login(sam)
    assert client.post(h.transcript_url(rich), {"title": "changed"}).status_code == 405
    assert client.get(reverse("admin:chat_conversation_add")).status_code == 403
    html = client.get(h.transcript_url(rich)).content.decode()
    assert "<textarea" not in html and 'name="_save"' not in html
    rich.refresh_from_db()
    assert rich.title == "Rich transcript"


def test_transcript_of_a_missing_conversation_redirects_to_the_list(rita_client):
    response = rita_client.get(reverse("admin:chat_conversation_change", args=[999999]))
    assert response.status_code == 302
    assert TranscriptView.objects.count() == 0


def test_transcript_query_count_does_not_grow_with_messages(
    rita_client, alice, charlie, django_assert_max_num_queries
):
    conv = h.conversation(alice, "long")

    def add(count):
        for number in range(count):
            question, answer = h.exchange(conv, f"q{number}", f"a{number}", prompt=1, completion=1)
            h.image(question, payload=f"{number}-{conv.messages.count()}".encode())
            h.feedback(answer, charlie, Feedback.Rating.DOWN)
            ReviewMark.objects.create(message=answer, reviewer=alice, note="seen")

    add(2)
    with django_assert_max_num_queries(10):
        rita_client.get(h.transcript_url(conv))
    add(25)
    with django_assert_max_num_queries(10):
        response = rita_client.get(h.transcript_url(conv))
    assert response.content.decode().count('class="chat-msg ') == 54


def test_message_admin_opens_the_message_in_its_transcript(rita_client, rich):
    message = rich.messages.first()
    response = rita_client.get(reverse("admin:chat_message_change", args=[message.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{h.transcript_url(rich)}#m-{message.public_id}"


@pytest.fixture
def branched(alice):
    """A question edited once (its first version answered), then a reply regenerated with thinking and tools."""
    conv = h.conversation(alice, "Branched")
    typo = h.message(conv, "user", "Waht is 2+2?")
    h.message(conv, "assistant", "Did you mean 2+2?")
    h.version(typo, "What is 2+2?")
    first = h.message(conv, "assistant", "Four, I think.", model="claude-4-5-sonnet")
    h.version(first, "2 + 2 = 4.", model="claude-4-5-sonnet", reasoning="Add the *two* numbers.", tool_calls=[
        h.tool_step("calculator", '{"expression": "2+2"}', "4"),
        h.tool_step("clock", '{"timezone": "Mars/Base"}', "clock failed: unknown time zone", is_error=True,
                    call_id="call_2"),
    ])
    return conv


def test_transcript_shows_every_version_in_conversation_order(rita_client, branched):
    response = rita_client.get(h.transcript_url(branched))
    shown = [(e.message.content, e.shown, e.branch["index"], e.branch["count"]) for e in response.context["entries"]]
    assert shown == [
        ("Waht is 2+2?", False, 1, 2),
        ("Did you mean 2+2?", False, 1, 1),
        ("What is 2+2?", True, 2, 2),
        ("Four, I think.", False, 1, 2),
        ("2 + 2 = 4.", True, 2, 2),
    ]
    html = response.content.decode()
    assert html.count("Version 1 of 2 · not shown to the user") == 2
    assert html.count("Version 2 of 2 · shown") == 2
    assert html.count("Not shown to the user") == 1
    assert "(3 not shown to the user" in html


def test_transcript_shows_reasoning_and_tool_steps(rita_client, branched):
    html = rita_client.get(h.transcript_url(branched)).content.decode()
    assert "<summary>Reasoning</summary>" in html and "<em>two</em>" in html
    assert "<summary>Tool call: calculator</summary>" in html
    assert '<pre>{\n  &quot;expression&quot;: &quot;2+2&quot;\n}</pre>' in html
    assert '<p class="chat-note">Result</p><pre>4</pre>' in html
    assert "<summary>Tool call: clock · failed</summary>" in html
    assert '<p class="chat-note">Error</p><pre>clock failed: unknown time zone</pre>' in html


def test_a_hidden_version_opened_from_the_message_list_is_in_the_transcript(rita_client, branched):
    hidden = branched.messages.get(content="Four, I think.")
    response = rita_client.get(reverse("admin:chat_message_change", args=[hidden.pk]), follow=True)
    assert response.redirect_chain[-1][0].endswith(f"#m-{hidden.public_id}")
    assert f'id="m-{hidden.public_id}"' in response.content.decode()


# --- Exports -----------------------------------------------------------------------------------------------------


def test_export_json_has_the_documented_shape(rita_client, rich):
    response = rita_client.get(reverse("admin:chat_conversation_export", args=[rich.pk, "json"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="rich-transcript-')
    document = json.loads(response.content)
    assert (document["format"], document["version"]) == ("claude-chat.conversations", 2)
    (conv,) = document["conversations"]
    assert conv["id"] == str(rich.public_id) and conv["owner"] == "alice" and conv["title"] == "Rich transcript"
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]
    assert conv["path"] == [m["id"] for m in conv["messages"]]
    assert [m["parent"] for m in conv["messages"]] == [None, *conv["path"][:-1]]
    reply = conv["messages"][1]
    assert (reply["selected"], reply["reasoning"], reply["tool_calls"]) == (True, "", [])
    assert reply["usage"] == {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168}
    assert reply["timings"]["time_to_first_token"] == 0.5 and reply["timings"]["duration"] == 2.25
    assert reply["model"] == "claude-4-5-sonnet" and reply["finish_reason"] == "stop"
    (picture,) = conv["messages"][2]["attachments"]
    assert picture["filename"] == "holiday.png" and len(picture["sha256"]) == 64
    assert set(picture) == {"id", "sha256", "url", "filename", "content_type", "width", "height"}
    assert conv["messages"][3]["status"] == "error" and conv["messages"][3]["error"] == "The model is overloaded."


def test_export_markdown(rita_client, rich):
    response = rita_client.get(reverse("admin:chat_conversation_export", args=[rich.pk, "md"]))
    text = response.content.decode()
    assert response["Content-Type"].startswith("text/markdown")
    assert text.startswith("# Rich transcript\n")
    assert "## User\n" in text and "## Assistant (claude-4-5-sonnet)" in text
    assert "```python\nprint('hi')\n```" in text
    assert "> **Error:** The model is overloaded." in text
    assert "*Tokens: 123 in, 45 out*" in text
    assert "![holiday.png](" in text


def test_export_json_keeps_every_version_and_the_markdown_the_shown_ones(rita_client, branched):
    url = reverse("admin:chat_conversation_export", args=[branched.pk, "json"])
    (conv,) = json.loads(rita_client.get(url).content)["conversations"]
    by_id = {m["id"]: m for m in conv["messages"]}
    assert [by_id[key]["content"] for key in conv["path"]] == ["What is 2+2?", "2 + 2 = 4."]
    assert [(m["content"], m["selected"]) for m in conv["messages"]] == [
        ("Waht is 2+2?", False), ("Did you mean 2+2?", True), ("What is 2+2?", True), ("Four, I think.", False),
        ("2 + 2 = 4.", True),
    ]
    reply = by_id[conv["path"][-1]]
    assert reply["reasoning"] == "Add the *two* numbers."
    assert reply["tool_calls"][0] == {"id": "call_1", "name": "calculator", "arguments": '{"expression": "2+2"}',
                                      "result": "4", "is_error": False}
    text = rita_client.get(reverse("admin:chat_conversation_export", args=[branched.pk, "md"])).content.decode()
    assert "Waht" not in text and "Four, I think." not in text
    assert "> Used calculator(2+2) → 4" in text


def test_export_is_audited_and_unknown_formats_are_404(rita_client, rich):
    rita_client.get(reverse("admin:chat_conversation_export", args=[rich.pk, "json"]))
    assert TranscriptView.objects.get().action == "export"
    assert rita_client.get(reverse("admin:chat_conversation_export", args=[rich.pk, "pdf"])).status_code == 404
