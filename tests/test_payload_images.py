"""Images in the request to the model: content parts, at most 20 a request, a fixed number of queries."""

import pytest

from chat.models import Attachment, Message
from chat.turns.prompt import build_messages
from tests.uploads import draft, png

pytestmark = pytest.mark.django_db

@pytest.fixture
def blob(alice):
    return draft(alice, png(), "shared.png").blob


def say(conversation, role, text, images=0, blob=None, **fields):
    message = Message.objects.create(conversation=conversation, role=role, content=text, **fields)
    for _ in range(images):
        Attachment.objects.create(owner=conversation.owner, message=message, blob=blob, filename="shared.png")
    return message


def kinds(message):
    content = message["content"]
    return content if isinstance(content, str) else [p["text"] if p["type"] == "text" else "image" for p in content]


def test_a_user_message_with_an_image_becomes_text_then_image_parts(conversation, blob):
    say(conversation, "user", "What is this?", images=1, blob=blob)

    user = build_messages(conversation)[-1]

    assert user["role"] == "user"
    assert user["content"][0] == {"type": "text", "text": "What is this?"}
    assert user["content"][1]["type"] == "image_url"
    # The URL is written from the stored bytes as the request is sent (tests/test_streamed_images.py).
    url = user["content"][1]["image_url"]["url"]
    assert (url.content_type, url.size) == ("image/jpeg", blob.size)


def test_the_newest_twenty_images_are_sent_and_older_ones_noted(conversation, blob):
    say(conversation, "user", "old", images=3, blob=blob)
    say(conversation, "assistant", "Seen.")
    say(conversation, "user", "newer", images=19, blob=blob)
    say(conversation, "assistant", "Seen too.")
    say(conversation, "user", "newest", images=1, blob=blob)

    messages = build_messages(conversation)

    assert kinds(messages[1]) == ["old", "[earlier image omitted]", "[earlier image omitted]",
                                  "[earlier image omitted]"]
    assert kinds(messages[3]) == ["newer"] + ["image"] * 19
    assert kinds(messages[5]) == ["newest", "image"]


def test_a_user_message_whose_reply_failed_is_merged_with_the_next(conversation, blob):
    say(conversation, "user", "Here is the chart", images=1, blob=blob)
    say(conversation, "assistant", "", status=Message.Status.ERROR, error="The API failed.")
    say(conversation, "user", "Did you get it?")

    messages = build_messages(conversation)

    assert [m["role"] for m in messages] == ["system", "user"]
    assert kinds(messages[1]) == ["Here is the chart", "image", "Did you get it?"]


def test_a_text_conversation_keeps_plain_string_content(conversation):
    say(conversation, "user", "Hi")
    say(conversation, "assistant", "Hello!")
    say(conversation, "user", "Bye")

    assert build_messages(conversation)[1:] == [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]


def test_queries_do_not_grow_with_the_history(conversation, blob, django_assert_num_queries):
    for number in range(30):
        say(conversation, "user", f"question {number}", images=number % 3, blob=blob)
        say(conversation, "assistant", f"answer {number}")

    # The tree (which messages are visible), their text, which images they have (no bytes), the bytes sent.
    with django_assert_num_queries(4):
        messages = build_messages(conversation)
    assert len(messages) == 1 + 60  # the system prompt and the whole history
    assert sum(kinds(m).count("image") for m in messages if isinstance(m["content"], list)) == 20


def test_a_conversation_without_images_looks_for_none(conversation, django_assert_num_queries):
    for number in range(30):
        say(conversation, "user", f"question {number}")
        say(conversation, "assistant", f"answer {number}")

    # The tree and the text, which says there are no images: nothing to look up.
    with django_assert_num_queries(2):
        messages = build_messages(conversation)
    assert [m["content"] for m in messages[-2:]] == ["question 29", "answer 29"]
    assert len(messages) == 1 + 60
