"""Sending images: the message claims its uploads, the model gets them as data URLs, strangers get nothing."""

import base64
import io
import uuid

import pytest
from channels.db import database_sync_to_async
from PIL import Image

from chat.models import Attachment
from tests.sockets import ask, frames_until, is_final, next_frame, send_frame, stored
from tests.uploads import draft, encode, exif_with_location, png

pytestmark = pytest.mark.django_db(transaction=True)

UNAVAILABLE = "An attached image is no longer available. Remove it and attach it again."


def holiday_photo():
    """A 60×40 JPEG, stored rotated (EXIF orientation 6), with GPS and a comment."""
    return encode(Image.new("RGB", (60, 40), "blue"), "JPEG", exif=exif_with_location(6), comment=b"secret note")


async def upload(owner, data=None, filename="photo.png"):
    return await database_sync_to_async(draft)(owner, data, filename)


def with_images(text, attachments, client_id=None):
    return {**send_frame(text, client_id), "attachments": [str(a.public_id) for a in attachments]}


def decode_data_url(url):
    prefix, _, encoded = url.partition(",")
    return prefix, base64.b64decode(encoded, validate=True)


async def test_an_image_reaches_the_model_as_a_data_url_without_metadata(socket, alice, api):
    photo = await upload(alice, holiday_photo(), "holiday.jpg")

    await socket.send_json_to(with_images("What is in this picture?", [photo]))
    frames = await frames_until(socket, is_final)

    content = api.requests[-1]["body"]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is in this picture?"}
    assert [part["type"] for part in content] == ["text", "image_url"]
    prefix, data = decode_data_url(content[1]["image_url"]["url"])
    assert prefix == "data:image/jpeg;base64"
    img = Image.open(io.BytesIO(data))
    assert (img.format, img.size) == ("JPEG", (40, 60))
    assert not img.getexif() and not {"exif", "comment", "icc_profile"} & img.info.keys()
    for marker in (b"Exif", b"GPS", b"Taken at home", b"secret note"):
        assert marker not in data
    assert "You attached 1 image: a JPEG image of 40×60 pixels." in frames[-1]["message"]["content"]


async def test_the_acknowledgement_and_the_stored_message_carry_the_images(socket, alice, conversation, api):
    first, second = await upload(alice, png(colour="red"), "red.png"), await upload(alice, png(colour="blue"), "b.png")

    await socket.send_json_to(with_images("Compare", [first, second]))
    frames = await frames_until(socket, is_final)

    ack = frames[0]["message"]
    assert ack["attachments"] == [
        {"id": str(a.public_id), "url": f"/attachments/{a.public_id}/", "width": 40, "height": 30,
         "content_type": "image/jpeg", "filename": a.filename}
        for a in (first, second)
    ]
    assert frames[1]["message"]["attachments"] == []  # the reply placeholder
    user, _ = await stored(conversation)
    claimed = await database_sync_to_async(lambda: list(Attachment.objects.filter(message=user)))()
    assert claimed == [first, second]


async def test_a_message_of_images_only_has_no_text_part(socket, alice, conversation, api):
    photo = await upload(alice, png(), "whiteboard.png")

    await socket.send_json_to(with_images("", [photo]))
    frames = await frames_until(socket, is_final)

    content = api.requests[-1]["body"]["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["image_url"]
    assert {"type": "conversation", "id": str(conversation.public_id), "title": "whiteboard.png"} in frames


async def test_images_go_again_with_every_later_turn(socket, alice, api):
    photo = await upload(alice, png(), "chart.png")
    await socket.send_json_to(with_images("Look at this", [photo]))
    await frames_until(socket, is_final)

    await ask(socket, "And what colour is it?")

    history = api.requests[-1]["body"]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert [part["type"] for part in history[1]["content"]] == ["text", "image_url"]
    assert history[3] == {"role": "user", "content": "And what colour is it?"}


async def test_a_strangers_upload_cannot_be_sent(socket, conversation, charlie, api):
    theirs = await upload(charlie, png(), "private.png")
    client_id = uuid.uuid4()

    await socket.send_json_to(with_images("Whose is this?", [theirs], client_id))

    assert await next_frame(socket) == {"type": "error", "code": "invalid", "message": UNAVAILABLE,
                                        "client_id": str(client_id)}
    assert await stored(conversation) == []
    assert await database_sync_to_async(lambda: Attachment.objects.get().message_id)() is None
    assert not api.requests


async def test_an_image_is_sent_only_once(socket, alice, conversation, api):
    photo = await upload(alice, png(), "once.png")
    await socket.send_json_to(with_images("First", [photo]))
    await frames_until(socket, is_final)
    client_id = uuid.uuid4()

    await socket.send_json_to(with_images("Again", [photo], client_id))

    assert await next_frame(socket) == {"type": "error", "code": "invalid", "message": UNAVAILABLE,
                                        "client_id": str(client_id)}
    assert [(m.role, m.content) for m in await stored(conversation)][0] == ("user", "First")
    assert len(await stored(conversation)) == 2


async def test_one_unavailable_image_refuses_the_whole_message(socket, alice, charlie, conversation, api):
    mine, theirs = await upload(alice, png(colour="red")), await upload(charlie, png(colour="blue"))

    await socket.send_json_to(with_images("Both", [mine, theirs]))

    assert (await next_frame(socket))["message"] == UNAVAILABLE
    assert await stored(conversation) == []
    assert await database_sync_to_async(lambda: Attachment.objects.filter(message__isnull=False).count())() == 0


async def test_a_resend_is_acknowledged_again_and_stored_once(socket, alice, conversation, api):
    photo = await upload(alice, png())
    client_id = uuid.uuid4()
    await socket.send_json_to(with_images("Once", [photo], client_id))
    await frames_until(socket, is_final)

    await socket.send_json_to(with_images("Once", [photo], client_id))

    ack = (await next_frame(socket))["message"]
    assert (ack["client_id"], [a["id"] for a in ack["attachments"]]) == (str(client_id), [str(photo.public_id)])
    assert len(await stored(conversation)) == 2


@pytest.mark.parametrize(
    ("attachments", "message"),
    [
        ("not-a-list", "attachments must be a list of image ids."),
        (["not-a-uuid"], "attachments must be a list of distinct image ids."),
        ([12345], "attachments must be a list of distinct image ids."),
        (["5d1c3e3a-0000-4000-8000-000000000000"] * 2, "attachments must be a list of distinct image ids."),
        ([str(uuid.uuid4()) for _ in range(21)], "A message can carry at most 20 images."),
        ([], "A message needs some text or an image."),
    ],
)
async def test_a_malformed_attachment_list_is_refused(socket, conversation, attachments, message):
    client_id = uuid.uuid4()
    await socket.send_json_to({**send_frame("", client_id), "attachments": attachments})

    assert await next_frame(socket) == {"type": "error", "code": "invalid", "message": message,
                                        "client_id": str(client_id)}
    assert await stored(conversation) == []
