"""Uploading an image: what is accepted and how it is stored, what is refused and why, and who may upload.

Every bad input is built here from bytes. A refused file leaves no row behind.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from chat.models import Attachment, ImageBlob
from tests.uploads import PNG_SIGNATURE, draft, encode, exif_with_location, photo, png, png_header_only, upload

pytestmark = pytest.mark.django_db


def reopen(data):
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def stored_rows():
    return Attachment.objects.count(), ImageBlob.objects.count()


def truncated_jpeg():
    data = encode(photo((400, 300)), "JPEG")
    return data[: len(data) // 2]


def gif_js_polyglot():
    gif = b"GIF89a" + encode(Image.new("P", (0x2A2F, 1)), "GIF")[6:]
    return gif + b"*/=1;alert('polyglot');//"


def animated_gif():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "lime", "blue")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg():
    return encode(Image.new("CMYK", (40, 20), (0, 255, 255, 0)), "JPEG")


def sixteen_bit_png():
    return encode(Image.new("I;16", (16, 16), 0x8080), "PNG")


def rotated_jpeg_with_gps():
    stored = Image.new("RGB", (60, 40), "blue")
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    return encode(stored, "JPEG", exif=exif_with_location(6), comment=b"secret note")


REFUSED = [
    ("notes.png", lambda: b"Meeting notes: buy milk.\n", 400, "This file is not an image."),
    ("page.png", lambda: b"<!doctype html><html><script>alert(document.cookie)</script></html>", 400,
     "This file is not an image."),
    ("logo.svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 400,
     "SVG images are not supported; please convert to JPEG or PNG."),
    ("broken.png", lambda: PNG_SIGNATURE + b"\x13\x37" * 100, 400, "This image is damaged or incomplete."),
    ("half.jpg", truncated_jpeg, 400, "This image is damaged or incomplete."),
    ("bomb.png", lambda: png_header_only(30_000, 30_000), 400,
     "This image's dimensions are too large (max 30 megapixels)."),
    ("empty.png", lambda: b"", 400, "This file is empty."),
    ("huge.jpg", lambda: b"\xff\xd8\xff" + b"\x00" * (20 * 1024 * 1024), 413, "This file is too large (max 20 MB)."),
]


@pytest.mark.parametrize(("filename", "make", "status", "message"), REFUSED, ids=[row[0] for row in REFUSED])
def test_a_refused_file_gets_its_reason_and_stores_nothing(alice_client, filename, make, status, message):
    response = upload(alice_client, make(), filename)

    assert (response.status_code, response.json()) == (status, {"error": message})
    assert stored_rows() == (0, 0)


ACCEPTED = [
    # name, bytes, stored type, stored size, original format
    ("polyglot.gif", gif_js_polyglot, "image/jpeg", (1568, 1), "gif"),
    ("animated.gif", animated_gif, "image/jpeg", (32, 32), "gif"),
    ("print.jpg", cmyk_jpeg, "image/jpeg", (40, 20), "jpeg"),
    ("scan.png", sixteen_bit_png, "image/jpeg", (16, 16), "png"),
    ("holiday.jpg", rotated_jpeg_with_gps, "image/jpeg", (40, 60), "jpeg"),
]


@pytest.mark.parametrize(("filename", "make", "content_type", "size", "original"), ACCEPTED,
                         ids=[row[0] for row in ACCEPTED])
def test_an_accepted_file_is_stored_normalised(alice, alice_client, filename, make, content_type, size, original):
    response = upload(alice_client, make(), filename)

    assert response.status_code == 201
    attachment = Attachment.objects.select_related("blob").get()
    assert response.json() == {
        "id": str(attachment.public_id),
        "url": f"/attachments/{attachment.public_id}/",
        "width": size[0],
        "height": size[1],
        "content_type": content_type,
        "filename": filename,
    }
    assert (attachment.owner, attachment.message, attachment.original_format) == (alice, None, original)
    img = reopen(bytes(attachment.blob.data))
    assert (img.format, img.size, img.mode in ("RGB", "L")) == ("JPEG", size, True)
    assert not img.getexif() and "exif" not in img.info


def test_stored_bytes_carry_no_script_location_or_comment(alice_client):
    upload(alice_client, gif_js_polyglot(), "polyglot.gif")
    upload(alice_client, rotated_jpeg_with_gps(), "holiday.jpg")

    for blob in ImageBlob.objects.all():
        data = bytes(blob.data)
        for marker in (b"alert", b"GIF89a", b"Exif", b"GPS", b"Taken at home", b"secret note"):
            assert marker not in data


def test_exif_rotation_is_applied(alice_client):
    response = upload(alice_client, rotated_jpeg_with_gps(), "holiday.jpg")

    img = reopen(bytes(ImageBlob.objects.get().data))
    assert (response.json()["width"], response.json()["height"]) == img.size == (40, 60)
    red, green, blue = img.getpixel((35, 5))
    assert red > 200 and blue < 60  # the red corner moved from top-left to top-right


def test_the_animated_gif_keeps_its_first_frame(alice_client):
    upload(alice_client, animated_gif(), "animated.gif")

    red, green, blue = reopen(bytes(ImageBlob.objects.get().data)).getpixel((16, 16))
    assert red > 240 and green < 20 and blue < 20


def test_identical_uploads_share_one_blob(alice, charlie, alice_client):
    first = upload(alice_client, png(), "a.png").json()
    second = upload(alice_client, png(), "b.png").json()
    draft(charlie, png(), "c.png")

    assert first["id"] != second["id"]
    assert stored_rows() == (3, 1)


def test_the_declared_length_is_checked_before_reading(alice_client, settings):
    settings.CHAT_MAX_UPLOAD_BYTES = 1024 * 1024
    response = upload(alice_client, png(), "small.png", CONTENT_LENGTH=str(2 * 1024 * 1024))

    assert (response.status_code, response.json()) == (413, {"error": "This file is too large (max 1 MB)."})
    assert stored_rows() == (0, 0)


def test_the_upload_cap_comes_from_settings(alice_client, settings):
    settings.CHAT_MAX_UPLOAD_BYTES = 1024 * 1024
    response = upload(alice_client, png() + b"\x00" * (1024 * 1024), "padded.png")

    assert (response.status_code, response.json()) == (413, {"error": "This file is too large (max 1 MB)."})


def test_the_file_name_is_kept_without_folders_or_control_characters(alice_client):
    response = upload(alice_client, png(), "../../etc/\x07café\n.png")

    assert response.json()["filename"] == "café.png"
    assert Attachment.objects.get().filename == "café.png"


def test_anonymous_upload_is_refused(client):
    response = upload(client, png())

    assert (response.status_code, response.json()) == (401, {"error": "Log in again to attach images."})
    assert stored_rows() == (0, 0)


def test_upload_without_the_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = upload(client, png())

    assert response.status_code == 403
    assert stored_rows() == (0, 0)


def test_upload_with_the_csrf_token_from_the_page_is_accepted(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(reverse("chat:index"))

    response = upload(client, png(), HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)

    assert response.status_code == 201
    assert stored_rows() == (1, 1)


def test_upload_accepts_only_post(alice_client):
    assert alice_client.get(reverse("chat:upload")).status_code == 405


def test_unsent_uploads_expire_a_day_later(alice, alice_client):
    old = draft(alice, png(colour="red"), "old.png")
    Attachment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    recent = draft(alice, png(colour="blue"), "recent.png")

    upload(alice_client, png(colour="green"), "new.png")

    assert set(Attachment.objects.values_list("filename", flat=True)) == {"recent.png", "new.png"}
    assert ImageBlob.objects.count() == 2
    assert Attachment.objects.filter(pk=recent.pk).exists()


def test_purge_drafts_deletes_everyones_stale_drafts_and_their_bytes(alice, charlie, conversation):
    stale = [draft(alice, png(colour="red")), draft(charlie, png(colour="blue"))]
    kept = draft(charlie, png(colour="green"))
    Attachment.objects.filter(pk__in=[a.pk for a in stale]).update(created_at=timezone.now() - timedelta(days=2))
    out = io.StringIO()

    call_command("purge_drafts", stdout=out)

    assert out.getvalue() == "Deleted 2 unsent image(s).\n"
    assert list(Attachment.objects.all()) == [kept]
    assert ImageBlob.objects.count() == 1
