"""The review inbox: what needs a reviewer's eye (disliked, failed, cut-off replies) and marking it reviewed."""

import pytest
from django.urls import reverse

from chat.models import Feedback, ReviewMark
from chat.review import console
from tests import admin_helpers as h

pytestmark = pytest.mark.django_db

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
    assert f'{h.transcript_url(d["conv"])}#m-{d["disliked"].public_id}' in html


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
