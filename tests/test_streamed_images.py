"""Images are written into the request as it is sent: a turn holds no base64, a request one image at a time, and
the model receives exactly the bytes a fully built body would have had, on every attempt and tool round."""

import base64
import os
import tracemalloc

import pytest
from channels.db import database_sync_to_async
from httpx._content import encode_json

from chat import inference
from chat.inference import ratelimit
from chat.inference.body import IMAGE_GONE, Body, DataUrl, ImageGone
from chat.models import Attachment, ImageBlob, Message
from chat.standin.api import Fault, Reply
from chat.turns.prompt import build_messages
from tests.sockets import frames_until, is_final
from tests.test_attachment_send import upload, with_images
from tests.uploads import png

pytestmark = pytest.mark.django_db(transaction=True)

BLOB_SIZE = 400_000


def store_message(conversation, text, blobs):
    message = Message.objects.create(conversation=conversation, role="user", content=text)
    for blob in blobs:
        Attachment.objects.create(owner=conversation.owner, message=message, blob=blob, filename="x.jpg")
    return message


def random_blobs(count, size=BLOB_SIZE):
    """Incompressible blobs of distinct content, as noise photos are once encoded."""
    return [ImageBlob.objects.create(sha256=os.urandom(32).hex(), data=os.urandom(size), content_type="image/jpeg",
                                     width=1, height=1, size=size) for _ in range(count)]


def written_out(messages):
    """``messages`` with every DataUrl replaced by the data URL a whole-body build used to hold."""
    blobs = {blob.size: blob for blob in ImageBlob.objects.all()}  # sizes are distinct in these tests
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{**part, "image_url": {"url": data_url(blobs[part["image_url"]["url"].size])}}
                       if part["type"] == "image_url" else part for part in content]
        out.append({**message, "content": content})
    return out


def data_url(blob):
    return f"data:{blob.content_type};base64,{base64.b64encode(bytes(blob.data)).decode()}"


async def drain(body):
    return b"".join([chunk async for chunk in body.stream()])


async def test_the_body_is_byte_for_byte_what_httpx_would_have_encoded(conversation):
    blobs = await database_sync_to_async(random_blobs)(1) + await database_sync_to_async(random_blobs)(1, 1000)
    await database_sync_to_async(store_message)(conversation, 'Deux images « é ✓ » and a "quote"\n', blobs)
    messages = await database_sync_to_async(build_messages)(conversation)
    fields = {"model": "claude-4-5-sonnet", "messages": messages, "stream": True, "max_tokens": 64}

    body = Body(fields)
    sent = await drain(body)

    expected = encode_json({**fields, "messages": await database_sync_to_async(written_out)(messages)})[1]
    expected = b"".join(expected)
    assert sent == expected
    assert len(body) == len(sent)
    assert await drain(body) == sent  # each attempt gets the whole body again


async def test_a_prompt_holds_no_image_bytes_and_a_request_one_image_at_a_time(conversation):
    blobs = await database_sync_to_async(random_blobs)(20)
    await database_sync_to_async(store_message)(conversation, "twenty", blobs)
    tracemalloc.start()
    try:
        messages = await database_sync_to_async(build_messages)(conversation)
        held, _ = tracemalloc.get_traced_memory()
        # The upstream estimate counts the images without their bytes.
        text_only = [{**m, "content": [p for p in m["content"] if p["type"] == "text"]} for m in messages[1:]]
        estimate = ratelimit.estimate_tokens(messages, 0)
        assert estimate == ratelimit.estimate_tokens(messages[:1] + text_only, 0) + 20 * ratelimit.IMAGE_TOKENS
        tracemalloc.reset_peak()
        body = Body({"messages": messages})
        written = 0
        async for chunk in body.stream():
            written += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 20 base64 copies would be 10.7 MB; the prompt holds none, the body one image and one chunk at a time.
    assert held < BLOB_SIZE / 2
    assert peak - held < 3 * BLOB_SIZE
    assert written == len(body) > 20 * BLOB_SIZE * 4 / 3


async def test_every_attempt_and_tool_round_sends_the_images(socket, alice, api, settings):
    settings.INFERENCE_MAX_RETRIES = 1
    settings.INFERENCE_RETRY_BASE_DELAY = 0.0
    photos = [await upload(alice, png(colour=colour), f"{colour}.png") for colour in ("teal", "orange")]
    api.inject(Fault("status", status=503))
    api.enqueue(Reply(tool_calls=[("calculator", {"expression": "6 * 7"})]))
    api.enqueue(Reply(text="Two images, and 42."))

    await socket.send_json_to(with_images("What are these?", photos))
    final = (await frames_until(socket, is_final))[-1]["message"]

    assert final["status"] == "complete" and final["content"] == "Two images, and 42."
    urls = [data_url(photo.blob) for photo in photos]
    assert len(api.requests) == 3  # the refused attempt, the first round, the second round
    for request in api.requests:
        user = request["body"]["messages"][1]
        assert [part["image_url"]["url"] for part in user["content"][1:]] == urls
        assert "transfer-encoding" not in request["headers"]  # a known Content-Length, as before
    assert api.requests[2]["body"]["messages"][2]["tool_calls"][0]["function"]["name"] == "calculator"


async def test_an_image_gone_before_it_is_sent_fails_the_request_clearly(conversation, api):
    blobs = await database_sync_to_async(random_blobs)(2)
    message = await database_sync_to_async(store_message)(conversation, "two", blobs)
    messages = await database_sync_to_async(build_messages)(conversation)
    await database_sync_to_async(message.delete)()  # its attachments go, and with them the unused blobs

    with pytest.raises(ImageGone) as failure:
        async for _ in inference.stream_chat(messages):
            pass

    assert failure.value.user_message == IMAGE_GONE and not failure.value.retryable
    # The half-written request poisoned nothing: the next one is answered.
    api.enqueue(Reply(text="Fine."))
    events = [event async for event in inference.stream_chat([{"role": "user", "content": "hi"}])]
    assert any(isinstance(event, inference.TextDelta) and event.text for event in events)


async def test_a_blob_of_another_length_than_promised_is_refused():
    async def read():
        return b"abc"

    with pytest.raises(ImageGone):
        await drain(Body({"url": DataUrl("image/png", 4, read)}))


def test_a_body_refuses_what_json_cannot_encode():
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        Body({"messages": {1}})

