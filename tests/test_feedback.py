"""Thumbs up or down on a reply: only the conversation's owner rates, a second vote replaces the first, and the
admin's review console lists it."""

import pytest
from django.urls import reverse

from chat.models import Conversation, Feedback, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply(alice):
    conv = Conversation.objects.create(owner=alice, title="Rated")
    Message.objects.create(conversation=conv, role="user", content="question")
    return Message.objects.create(conversation=conv, role="assistant", content="answer")


def rate(client, message, **data):
    return client.post(reverse("chat:feedback", args=[message.public_id]), data)


def test_a_thumbs_up_is_stored(alice, alice_client, reply):
    response = rate(alice_client, reply, rating="1")
    assert response.status_code == 200
    assert response.json() == {"message": str(reply.public_id), "rating": 1, "comment": ""}
    assert Feedback.objects.get().user == alice


def test_a_second_vote_replaces_the_first(alice_client, reply):
    rate(alice_client, reply, rating="1")
    rate(alice_client, reply, rating="-1", comment="  It missed the point.  ")
    vote = Feedback.objects.get()
    assert (vote.rating, vote.comment) == (-1, "It missed the point.")


@pytest.mark.parametrize(
    "data, error",
    [({"rating": "0"}, "Rate with 1"), ({}, "Rate with 1"), ({"rating": "1", "comment": "x" * 2001}, "2000")],
)
def test_invalid_votes_are_rejected(alice_client, reply, data, error):
    response = rate(alice_client, reply, **data)
    assert response.status_code == 400 and error in response.json()["error"]
    assert not Feedback.objects.exists()


def test_a_comment_of_2000_characters_is_fine(alice_client, reply):
    assert rate(alice_client, reply, rating="1", comment="x" * 2000).status_code == 200


def test_only_the_owner_can_rate(client, charlie, bob, reply):
    for user in (charlie, bob):  # staff review transcripts; they do not vote in someone else's chat
        client.force_login(user)
        assert rate(client, reply, rating="-1").status_code == 404
    assert not Feedback.objects.exists()


def test_user_messages_cannot_be_rated(alice_client, reply):
    question = reply.conversation.messages.get(role="user")
    assert rate(alice_client, question, rating="1").status_code == 404


def test_get_and_anonymous_are_refused(alice_client, reply):
    assert alice_client.get(reverse("chat:feedback", args=[reply.public_id])).status_code == 405
    alice_client.logout()
    assert rate(alice_client, reply, rating="1").status_code == 302


def test_the_page_shows_the_thumbs_pressed(alice_client, reply):
    rate(alice_client, reply, rating="-1")
    page = alice_client.get(reply.conversation.get_absolute_url()).content.decode()
    assert 'data-rating="-1" aria-label="Bad reply" aria-pressed="true"' in page
    assert 'data-rating="1" aria-label="Good reply" aria-pressed="false"' in page
    assert page.count('class="feedback-button"') == 2  # the reply only, not the question


def test_admins_see_the_feedback(client, alice_client, reply, sam):
    rate(alice_client, reply, rating="-1", comment="Too vague")
    client.force_login(sam)
    page = client.get(reverse("admin:chat_feedback_changelist"))
    assert page.status_code == 200
    assert "Not helpful" in page.content.decode()
