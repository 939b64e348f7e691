"""The review console as a reviewer uses it: the conversation list, the transcript, exports and the inbox."""

import io
import json
import zipfile

import pytest
from django.urls import reverse

from chat.review import console
from chat.models import Feedback, Message, ReviewMark, TranscriptView
from tests import admin_helpers as h

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/chat/conversation/"


def transcript_url(conv):
    return reverse("admin:chat_conversation_change", args=[conv.pk])


@pytest.fixture
def chats(alice, charlie):
    """A small, varied set of conversations."""
    ok = h.conversation(alice, "Soup recipes")
    h.exchange(ok, "How do I make soup?", "Boil **water**.", model="claude-4-5-sonnet", prompt=10, completion=20)
    h.feedback(ok.messages.last(), alice, Feedback.Rating.UP)

    failed = h.conversation(alice, "Tax question")
    h.exchange(failed, "What about taxes?", "", status="error", model="claude-4-5-haiku",
               error="The model is unavailable.", prompt=5, completion=0)

    cut = h.conversation(charlie, "Long story")
    h.exchange(cut, "Tell me a long story", "Once upon", status="interrupted", model="claude-4-5-sonnet")

    pics = h.conversation(charlie, "Cat picture")
    question, answer = h.exchange(pics, "What is in this image?", "A cat.", model="claude-4-5-sonnet",
                                  prompt=1500, completion=5)
    h.image(question)
    h.feedback(answer, charlie, Feedback.Rating.DOWN, "It is a dog")
    return {"ok": ok, "failed": failed, "cut": cut, "pics": pics}


def listed_titles(response):
    return {row.display_title for row in response.context["cl"].result_list}


# --- The list ----------------------------------------------------------------------------------------------------


def test_list_shows_owner_counts_tokens_status_and_feedback(rita_client, chats):
    response = rita_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for title in ("Soup recipes", "Tax question", "Long story", "Cat picture"):
        assert title in html
    rows = {row.display_title: row for row in response.context["cl"].result_list}
    soup, pics = rows["Soup recipes"], rows["Cat picture"]
    assert (soup.n_messages, soup.n_prompt_tokens, soup.n_completion_tokens) == (2, 10, 20)
    assert (soup.n_up, soup.n_down, soup.last_status) == (1, 0, "complete")
    assert (pics.n_up, pics.n_down) == (0, 1)
    assert rows["Tax question"].last_status == "error"
    assert "1,500 / 5" in html
    assert "+0&nbsp;−1" in html
    assert '<span class="chat-status chat-status--interrupted">interrupted</span>' in html


def test_list_is_newest_activity_first(rita_client, alice):
    for day, title in [(3, "middle"), (5, "newest"), (1, "oldest")]:
        h.conversation(alice, title, created=h.at(1), updated=h.at(day))
    response = rita_client.get(CHANGELIST)
    assert [c.title for c in response.context["cl"].result_list] == ["newest", "middle", "oldest"]


def test_list_sorts_by_computed_columns(rita_client, chats):
    response = rita_client.get(CHANGELIST, {"o": "-5"})  # the "Messages" column, then tokens (6)
    assert response.status_code == 200
    response = rita_client.get(CHANGELIST, {"o": "-6"})
    assert response.context["cl"].result_list[0].title == "Cat picture"


def test_list_is_paginated(rita_client, alice):
    for number in range(55):
        h.conversation(alice, f"chat {number}")
    response = rita_client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 50
    assert len(rita_client.get(CHANGELIST, {"p": 2}).context["cl"].result_list) == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "error"}, {"Tax question"}),
        ({"status": "interrupted"}, {"Long story"}),
        ({"model": "claude-4-5-haiku"}, {"Tax question"}),
        ({"model": "claude-4-5-sonnet"}, {"Soup recipes", "Long story", "Cat picture"}),
        ({"images": "yes"}, {"Cat picture"}),
        ({"images": "no"}, {"Soup recipes", "Tax question", "Long story"}),
        ({"negative": "yes"}, {"Cat picture"}),
        ({"owner": "alice"}, {"Soup recipes", "Tax question"}),
        ({"owner": "ALICE", "status": "error"}, {"Tax question"}),
        ({"owner": "nobody"}, set()),
    ],
)
def test_filters(rita_client, chats, params, expected):
    response = rita_client.get(CHANGELIST, params)
    assert response.status_code == 200
    assert listed_titles(response) == expected


def test_date_filter(rita_client, alice):
    h.conversation(alice, "old", created=h.at(1))
    h.conversation(alice, "new")
    since = h.today_at(0).isoformat()
    response = rita_client.get(CHANGELIST, {"created_at__gte": since})
    assert listed_titles(response) == {"new"}


def test_filter_sidebar_offers_models_and_a_user_box(rita_client, chats):
    html = rita_client.get(CHANGELIST, {"status": "error"}).content.decode()
    assert "claude-4-5-haiku" in html
    assert 'name="owner"' in html
    # The user box keeps the other filters when submitted.
    assert '<input type="hidden" name="status" value="error">' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("soup", {"Soup recipes"}),  # title and message text
        ("charlie", {"Long story", "Cat picture"}),  # owner
        ("upon", {"Long story"}),  # reply text only
        ("taxes", {"Tax question"}),  # question text only
        ('"long story"', {"Long story"}),  # quoted phrase
        ("cat image", {"Cat picture"}),  # every word must match somewhere
        ("nothing-like-this", set()),
    ],
)
def test_search(rita_client, chats, query, expected):
    response = rita_client.get(CHANGELIST, {"q": query})
    assert listed_titles(response) == expected


def test_search_lists_a_conversation_once_however_many_messages_match(rita_client, alice):
    conv = h.conversation(alice, "repeats")
    for _ in range(3):
        h.exchange(conv, "banana", "banana banana")
    response = rita_client.get(CHANGELIST, {"q": "banana"})
    assert len(response.context["cl"].result_list) == 1
    assert response.context["cl"].result_list[0].n_messages == 6


def _fill(owner, count):
    for number in range(count):
        conv = h.conversation(owner, f"bulk {number}")
        question, answer = h.exchange(conv, "q", "a", model="m", prompt=1, completion=2)
        h.feedback(answer, owner, Feedback.Rating.DOWN)
        h.image(question, payload=f"{number}".encode())


def test_list_query_count_does_not_grow_with_rows(rita_client, alice, django_assert_max_num_queries):
    _fill(alice, 3)
    with django_assert_max_num_queries(8):
        small = rita_client.get(CHANGELIST, {"q": "q", "negative": "yes"})
    _fill(alice, 40)
    with django_assert_max_num_queries(8):
        large = rita_client.get(CHANGELIST, {"q": "q", "negative": "yes"})
    assert len(small.context["cl"].result_list) == 3
    assert len(large.context["cl"].result_list) == 43


# --- The transcript ----------------------------------------------------------------------------------------------


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
    response = rita_client.get(transcript_url(rich))
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
    html = rita_client.get(transcript_url(rich)).content.decode()
    url = console.exports.attachment_url(attachment)
    if url is None:
        assert 'class="chat-missing-image"' in html
    else:
        assert f'<img src="{url}"' in html


def test_opening_a_transcript_is_audited(rita_client, rita, rich):
    rita_client.get(transcript_url(rich))
    rita_client.get(transcript_url(rich))
    views = TranscriptView.objects.filter(conversation=rich)
    assert views.count() == 2
    assert {(v.viewer, v.viewer_username, v.action, v.conversation_public_id) for v in views} == {
        (rita, "rita", "view", rich.public_id)
    }


def test_transcript_is_read_only(rita_client, sam, client, rich):
    assert rita_client.post(transcript_url(rich), {"title": "changed"}).status_code == 405
    client.force_login(sam)
    assert client.post(transcript_url(rich), {"title": "changed"}).status_code == 405
    assert client.get(reverse("admin:chat_conversation_add")).status_code == 403
    html = client.get(transcript_url(rich)).content.decode()
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
        rita_client.get(transcript_url(conv))
    add(25)
    with django_assert_max_num_queries(10):
        response = rita_client.get(transcript_url(conv))
    assert response.content.decode().count('class="chat-msg ') == 54


def test_message_admin_opens_the_message_in_its_transcript(rita_client, rich):
    message = rich.messages.first()
    response = rita_client.get(reverse("admin:chat_message_change", args=[message.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{transcript_url(rich)}#m-{message.public_id}"


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
    response = rita_client.get(transcript_url(branched))
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
    html = rita_client.get(transcript_url(branched)).content.decode()
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


def test_bulk_export_json_and_markdown(rita_client, chats):
    selected = [chats["ok"].pk, chats["pics"].pk]
    response = rita_client.post(CHANGELIST, {"action": "export_json", "_selected_action": selected})
    assert response.status_code == 200
    document = json.loads(response.content)
    assert {c["title"] for c in document["conversations"]} == {"Soup recipes", "Cat picture"}
    assert TranscriptView.objects.filter(action="export").count() == 2

    response = rita_client.post(CHANGELIST, {"action": "export_markdown", "_selected_action": selected})
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert len(names) == 2 and all(name.endswith(".md") for name in names)
        assert any(archive.read(name).decode().startswith("# Soup recipes") for name in names)


def test_bulk_export_query_count_does_not_grow(rita_client, alice, django_assert_max_num_queries):
    _fill(alice, 3)
    ids = list(alice.conversations.values_list("pk", flat=True))
    with django_assert_max_num_queries(11):
        rita_client.post(CHANGELIST, {"action": "export_json", "_selected_action": ids})
    _fill(alice, 30)
    ids = list(alice.conversations.values_list("pk", flat=True))
    with django_assert_max_num_queries(11):
        response = rita_client.post(CHANGELIST, {"action": "export_json", "_selected_action": ids})
    assert len(json.loads(response.content)["conversations"]) == 33


# --- The review inbox --------------------------------------------------------------------------------------------

INBOX = "/admin/chat/conversation/inbox/"


@pytest.fixture
def inbox_data(alice, charlie):
    conv = h.conversation(alice, "Mixed")
    fine = h.message(conv, "assistant", "fine", created=h.at(1))
    error = h.message(conv, "assistant", "", status="error", error="Rate limited.", created=h.at(2))
    cut = h.message(conv, "assistant", "Once", status="interrupted", created=h.at(3))
    disliked = h.message(conv, "assistant", "meh", created=h.at(4))
    h.feedback(disliked, alice, Feedback.Rating.DOWN, "Too vague")
    liked = h.message(conv, "assistant", "great", created=h.at(5))
    h.feedback(liked, alice, Feedback.Rating.UP)
    return {"conv": conv, "fine": fine, "error": error, "cut": cut, "disliked": disliked, "liked": liked}


def inbox_ids(response):
    return [item.pk for item in response.context["page"].object_list]


def test_inbox_lists_what_needs_review_newest_first(rita_client, inbox_data):
    response = rita_client.get(INBOX)
    assert response.status_code == 200
    d = inbox_data
    assert inbox_ids(response) == [d["disliked"].pk, d["cut"].pk, d["error"].pk]
    html = response.content.decode()
    assert "Too vague" in html and "Rate limited." in html
    assert f'{transcript_url(d["conv"])}#m-{d["disliked"].public_id}' in html


@pytest.mark.parametrize(("kind", "expected"), [("negative", ["disliked"]), ("error", ["error"]),
                                                ("interrupted", ["cut"])])
def test_inbox_kinds(rita_client, inbox_data, kind, expected):
    response = rita_client.get(INBOX, {"kind": kind})
    assert inbox_ids(response) == [inbox_data[name].pk for name in expected]


def test_marking_reviewed_with_a_note(rita_client, rita, inbox_data):
    target = inbox_data["error"]
    url = reverse("admin:chat_conversation_review", args=[target.public_id])
    response = rita_client.post(url, {"note": "Upstream 429s, fine now", "next": INBOX + "?kind=error"})
    assert response.status_code == 302 and response["Location"] == INBOX + "?kind=error"
    mark = ReviewMark.objects.get()
    assert (mark.message, mark.reviewer, mark.note) == (target, rita, "Upstream 429s, fine now")
    assert target.pk not in inbox_ids(rita_client.get(INBOX))
    reviewed = rita_client.get(INBOX, {"state": "reviewed"})
    assert inbox_ids(reviewed) == [target.pk]
    assert "Upstream 429s, fine now" in reviewed.content.decode()
    assert len(inbox_ids(rita_client.get(INBOX, {"state": "all"}))) == 3


def test_marking_reviewed_refuses_foreign_redirects_and_gets(rita_client, inbox_data):
    url = reverse("admin:chat_conversation_review", args=[inbox_data["cut"].public_id])
    assert rita_client.get(url).status_code == 405
    response = rita_client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == INBOX


def test_inbox_query_count_does_not_grow(rita_client, alice, charlie, django_assert_max_num_queries):
    conv = h.conversation(alice, "many")

    def add(count):
        for _ in range(count):
            reply = h.message(conv, "assistant", "x", status="error", error="boom")
            h.feedback(reply, charlie, Feedback.Rating.DOWN, "bad")

    add(2)
    with django_assert_max_num_queries(9):
        rita_client.get(INBOX, {"state": "all"})
    add(30)
    with django_assert_max_num_queries(9):
        response = rita_client.get(INBOX, {"state": "all"})
    assert len(inbox_ids(response)) == console.INBOX_PAGE_SIZE


def test_review_links_on_the_admin_index_and_list(rita_client):
    assert "Review inbox" in rita_client.get("/admin/").content.decode()
    assert "Usage dashboard" in rita_client.get(CHANGELIST).content.decode()


def test_streaming_replies_are_listed_with_their_status(rita_client, alice):
    conv = h.conversation(alice, "live")
    h.message(conv, "assistant", "so far", status=Message.Status.STREAMING)
    response = rita_client.get(CHANGELIST, {"status": "streaming"})
    assert listed_titles(response) == {"live"}
