"""The review console's conversation list: its columns, order, filters, search and bulk exports."""

import io
import json
import zipfile

import pytest

from chat.models import Feedback, Message, TranscriptView
from tests import admin_helpers as h

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/chat/conversation/"


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


# --- Exports of the selected conversations -----------------------------------------------------------------------


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


def test_review_links_on_the_admin_index_and_list(rita_client):
    assert "Review inbox" in rita_client.get("/admin/").content.decode()
    assert "Usage dashboard" in rita_client.get(CHANGELIST).content.decode()


def test_streaming_replies_are_listed_with_their_status(rita_client, alice):
    conv = h.conversation(alice, "live")
    h.message(conv, "assistant", "so far", status=Message.Status.STREAMING)
    response = rita_client.get(CHANGELIST, {"status": "streaming"})
    assert listed_titles(response) == {"live"}
