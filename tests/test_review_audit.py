"""Every reading of message text or images in the review console leaves an audit row, or is refused.

The attack this guards against: a reviewer who recovers a secret one character at a time from what a list shows
or leaves out (``/admin/chat/message/?content__regex=^pin 7``), or who reads images by id, with no audit row.
"""

import pytest
from django.urls import reverse

from chat.models import Feedback, TranscriptView
from tests import admin_helpers as h
from tests.uploads import draft, png

pytestmark = pytest.mark.django_db

SECRET = "pin 7391"


@pytest.fixture
def secret(alice):
    conv = h.conversation(alice, "Bank")
    question, reply = h.exchange(conv, f"my {SECRET}", "noted", status="error", error="boom")
    h.feedback(reply, alice, Feedback.Rating.DOWN)
    return conv


def changelist(name):
    return reverse(f"admin:chat_{name}_changelist")


@pytest.mark.parametrize("name, probe", [
    ("message", "content__regex=^pin 7"),
    ("message", "content__startswith=my pin"),
    ("message", "reasoning__icontains=x"),
    ("message", "conversation__title__regex=^B"),
    ("conversation", "messages__content__regex=^my pin 7"),
    ("conversation", "title__regex=^B"),
    ("feedback", "message__content__regex=^noted"),
    ("feedback", "comment__regex=^"),
    ("reviewmark", "message__content__regex=^noted"),
    ("message", "_changelist_filters=content__regex%3D%5Epin"),
    ("message", "_facets=True&content__regex=^my"),
])
def test_a_lookup_outside_the_declared_filters_is_refused(rita_client, secret, name, probe):
    response = rita_client.get(f"{changelist(name)}?{probe}")
    assert response.status_code == 400
    assert SECRET not in response.content.decode()
    assert not TranscriptView.objects.exists()


def test_the_character_by_character_attack_learns_nothing(rita_client, secret):
    hit = rita_client.get(f"{changelist('message')}?content__regex=^my pin 7")
    miss = rita_client.get(f"{changelist('message')}?content__regex=^my pin 8")
    assert (hit.status_code, hit.content) == (miss.status_code, miss.content) == (400, miss.content)


EVER = "created_at__gte=2000-01-01%2000:00%2B00:00&created_at__lt=2100-01-01%2000:00%2B00:00"


@pytest.mark.parametrize("name, params, expected", [
    ("message", "status__exact=error&role__exact=assistant", 1),
    ("message", EVER, 2),
    ("message", "status__exact=complete&role__exact=assistant", 0),
    ("conversation", "owner=alice&status=error&images=no&negative=yes", 1),
    ("conversation", EVER, 1),
    ("feedback", f"rating__exact={Feedback.Rating.DOWN.value}", 1),
    ("reviewmark", EVER, 0),
])
def test_the_declared_filters_still_filter(rita_client, secret, name, params, expected):
    response = rita_client.get(f"{changelist(name)}?{params}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


def test_an_invalid_value_of_a_declared_filter_is_django_s_error_page(rita_client, secret):
    response = rita_client.get(f"{changelist('message')}?created_at__gte=not-a-date")
    assert response.status_code == 302 and response.url.endswith("?e=1")
    assert SECRET not in rita_client.get(response.url).content.decode()


@pytest.mark.parametrize("name, term", [("conversation", "pin 7"), ("message", "boom")])
def test_a_search_writes_an_audit_row_naming_it(rita_client, rita, secret, name, term):
    response = rita_client.get(changelist(name), {"q": term})
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    row = TranscriptView.objects.get()
    assert (row.viewer, row.action, row.detail, row.conversation_public_id) == (rita, "search", term, None)


def test_a_search_with_facet_counts_writes_one_row(rita_client, secret):
    assert rita_client.get(changelist("message"), {"q": "boom", "_facets": "True"}).status_code == 200
    assert TranscriptView.objects.get().detail == "boom"


def test_a_list_without_a_search_writes_no_row(rita_client, secret):
    for name in ("conversation", "message"):
        assert rita_client.get(changelist(name), {"q": "  "}).status_code == 200
        assert rita_client.get(changelist(name)).status_code == 200
    assert not TranscriptView.objects.exists()


def test_the_audit_log_shows_searches_and_image_fetches(client, sam, rita, secret):
    TranscriptView.record_search(rita, "pin 7")
    TranscriptView.record_image(rita, h.image(secret.messages.get(role="user")))
    client.force_login(sam)
    page = client.get(changelist("transcriptview")).content.decode()
    assert "pin 7" in page and "search" in page and str(secret.public_id) in page


def test_a_reviewer_fetching_a_sent_image_writes_an_audit_row(rita_client, rita, secret):
    photo = h.image(secret.messages.get(role="user"))
    assert rita_client.get(photo.get_absolute_url()).status_code == 200
    row = TranscriptView.objects.get()
    assert (row.viewer, row.action, row.conversation, row.detail) == (rita, "image", secret, str(photo.public_id))


def test_an_unsent_draft_is_a_404_to_reviewers(rita_client, alice):
    photo = draft(alice, png())
    assert rita_client.get(photo.get_absolute_url()).status_code == 404
    assert rita_client.head(photo.get_absolute_url()).status_code == 404
    assert not TranscriptView.objects.exists()


def test_the_owner_fetching_her_own_images_writes_no_row(alice_client, alice, secret):
    sent_image = h.image(secret.messages.get(role="user"))
    unsent = draft(alice, png(colour="red"))
    for photo in (sent_image, unsent):
        assert alice_client.get(photo.get_absolute_url()).status_code == 200
    assert not TranscriptView.objects.exists()


def test_the_autocomplete_search_is_audited_too(rita_client, rita, secret):
    # Django's admin answers select-box searches over any related field; it runs the same text search.
    response = rita_client.get(reverse("admin:autocomplete"), {
        "term": "pin 7", "app_label": "chat", "model_name": "message", "field_name": "conversation"})
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    row = TranscriptView.objects.get()
    assert (row.viewer, row.action, row.detail) == (rita, "search", "pin 7")
