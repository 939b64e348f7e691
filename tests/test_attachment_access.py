"""Fetching and deleting an attachment: only its owner and reviewers (once sent) see it; the bytes go with the last user of them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat.models import Attachment, Conversation, ImageBlob, Message
from tests.uploads import draft, png

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(alice):
    return draft(alice, png(), "Café photo.png")


def test_the_owner_gets_the_stored_bytes_with_safe_headers(alice_client, photo):
    response = alice_client.get(photo.get_absolute_url())

    assert response.status_code == 200
    assert response.content == bytes(ImageBlob.objects.get().data)
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    assert response["Content-Disposition"] == 'inline; filename="Cafe_photo.jpg"'
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"


def test_a_repeated_fetch_is_answered_not_modified(alice_client, photo):
    etag = alice_client.get(photo.get_absolute_url())["ETag"]

    response = alice_client.get(photo.get_absolute_url(), HTTP_IF_NONE_MATCH=etag)

    assert (response.status_code, response.content) == (304, b"")


def test_a_reviewer_can_fetch_any_sent_attachment(rita_client, conversation, photo):
    # Drafts are the owner's alone, and every reviewer fetch is audited: tests/test_review_audit.py.
    sent(conversation, photo)
    assert rita_client.get(photo.get_absolute_url()).status_code == 200


def test_staff_outside_the_reviewer_group_gets_a_404(client, bob, photo):
    client.force_login(bob)
    assert client.get(photo.get_absolute_url()).status_code == 404


def test_a_stranger_gets_a_404(client, charlie, photo):
    client.force_login(charlie)
    assert client.get(photo.get_absolute_url()).status_code == 404


def test_anonymous_gets_a_404(client, photo):
    assert client.get(photo.get_absolute_url()).status_code == 404


def test_an_unknown_attachment_is_a_404(alice_client, photo):
    unknown = reverse("chat:attachment", args=["5d1c3e3a-0000-4000-8000-000000000000"])
    assert alice_client.get(unknown).status_code == 404


def test_the_owner_can_delete_an_unsent_draft(alice_client, photo):
    assert alice_client.delete(photo.get_absolute_url()).status_code == 204
    assert (Attachment.objects.count(), ImageBlob.objects.count()) == (0, 0)


def test_nobody_deletes_a_strangers_draft_or_a_sent_image(client, alice, charlie, conversation, photo):
    client.force_login(charlie)
    assert client.delete(photo.get_absolute_url()).status_code == 404
    message = Message.objects.create(conversation=conversation, role="user", content="look")
    Attachment.objects.filter(pk=photo.pk).update(message=message)
    client.force_login(alice)
    assert client.delete(photo.get_absolute_url()).status_code == 404
    assert Attachment.objects.count() == 1


# The bytes go with their last attachment -----------------------------------------------------------------


def sent(conversation, *attachments):
    message = Message.objects.create(conversation=conversation, role="user", content="look")
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(message=message)
    return message


def test_deleting_a_conversation_deletes_its_images(alice, conversation):
    sent(conversation, draft(alice, png(colour="red")), draft(alice, png(colour="blue")))
    assert ImageBlob.objects.count() == 2

    conversation.delete()

    assert (Attachment.objects.count(), ImageBlob.objects.count()) == (0, 0)


def test_a_blob_stays_while_another_attachment_uses_it(alice, charlie, conversation):
    sent(conversation, draft(alice, png()))
    kept = draft(charlie, png())

    conversation.delete()

    assert list(Attachment.objects.all()) == [kept]
    assert ImageBlob.objects.get().pk == kept.blob_id


def test_deleting_messages_in_bulk_deletes_their_images(alice, conversation):
    sent(conversation, draft(alice, png(colour="red")))
    sent(conversation, draft(alice, png(colour="blue")), draft(alice, png(colour="blue")))

    Message.objects.filter(conversation=conversation).delete()

    assert (Attachment.objects.count(), ImageBlob.objects.count()) == (0, 0)


def test_deleting_a_user_deletes_their_images(alice, conversation):
    sent(conversation, draft(alice, png(colour="red")))
    draft(alice, png(colour="blue"))

    alice.delete()

    assert (Conversation.objects.count(), Attachment.objects.count(), ImageBlob.objects.count()) == (0, 0, 0)


# The conversation page ---------------------------------------------------------------------------------


def test_the_page_shows_sent_images_as_links_to_the_full_size(alice, alice_client, conversation):
    photo = draft(alice, png(), "whiteboard.png")
    sent(conversation, photo)

    html = alice_client.get(conversation.get_absolute_url()).content.decode()

    url = photo.get_absolute_url()
    assert (f'<div class="message-attachments"><a class="message-attachment" href="{url}" target="_blank" '
            f'rel="noopener" title="Open full size"><img src="{url}" alt="whiteboard.png" width="40" height="30" '
            'loading="lazy" decoding="async"></a></div>') in html


def test_the_page_costs_the_same_queries_with_more_images(alice, alice_client, conversation):
    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            alice_client.get(conversation.get_absolute_url())
        return len(queries)

    sent(conversation, draft(alice, png(colour="red")))
    few = page_queries()
    for colour in ("blue", "green", "white", "black"):
        sent(conversation, draft(alice, png(colour=colour)), draft(alice, png(colour=colour)))
        Message.objects.create(conversation=conversation, role="assistant", content="Nice.")

    assert page_queries() == few
