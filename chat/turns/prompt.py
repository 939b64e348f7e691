"""Turns stored messages into the API's ``messages`` list (HEROKU_INFERENCE.md, "Request body")."""

from functools import partial

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Exists, OuterRef

from chat.inference.body import DataUrl
from chat.models import Attachment, ImageBlob, Message
from chat.turns import options
from chat.tree import Tree

# Replies that failed before writing anything add nothing to the context.
_USABLE_REPLY = (Message.Status.COMPLETE, Message.Status.STOPPED, Message.Status.INTERRUPTED, Message.Status.ERROR)
MAX_IMAGES = 20  # per request, the provider's limit
OMITTED_IMAGE = "[earlier image omitted]"


def build_messages(conversation, *, path=None):
    """The conversation's system prompt and the messages ``path`` (ids, oldest first; by default the visible
    conversation), the history a reply answers.

    Earlier replies go as their text: their tool steps are not replayed (the answer already says what the
    tools found), which keeps requests small and the cached prefix stable.

    Consecutive messages of one role are merged, so a user message whose reply failed still reaches
    the model with the next one, and roles alternate as the API expects.

    A user message with images becomes a list of parts: its text (left out when blank: the API refuses
    empty text blocks), then one ``image_url`` part per image whose URL is a ``DataUrl`` of the stored bytes:
    the base64 text is written only while a request is sent (chat/inference/body.py), so the prompt holds no
    image bytes however long the turn lives.
    Images go with every request whose history includes their message, but at most MAX_IMAGES per
    request: the newest are kept (the message being answered always fits, it has at most as many) and each
    older one is replaced by the text part "[earlier image omitted]".
    """
    # A turn just stored knows its history (records.Stored.history_ids): no second look at the tree.
    if path is None:
        path = Tree.of(conversation.messages).path()
    ids = path[-settings.CHAT_HISTORY_MESSAGES :]
    # Plain tuples: this runs before every reply, over up to CHAT_HISTORY_MESSAGES rows.
    found = Message.objects.filter(pk__in=ids).exclude(status=Message.Status.STREAMING)
    # Which messages have images comes with the rows: most conversations have none, and then no second query.
    found = found.annotate(has_images=Exists(Attachment.objects.filter(message=OuterRef("pk"))))
    by_id = {row[0]: row for row in found.values_list("id", "role", "status", "content", "has_images")}
    rows = [by_id[pk] for pk in ids if pk in by_id]
    images = _image_parts([pk for pk, role, _, _, has_images in rows if role == Message.Role.USER and has_images])
    messages = [{"role": "system", "content": options.system_prompt(conversation)}]
    for pk, role, status, content, _ in rows:
        if role == Message.Role.ASSISTANT and (status not in _USABLE_REPLY or not content):
            continue
        content = _with_images(content, images.get(pk))
        if content:
            _append(messages, role, content)
    # The API expects the conversation to start with a user turn.
    while len(messages) > 1 and messages[1]["role"] != "user":
        messages.pop(1)
    return messages


def _image_parts(message_ids):
    """``{message id: [part, ...]}`` for the messages with images, in two queries whatever their number:
    which images there are, then the type and size of the MAX_IMAGES newest (no bytes: read when sent)."""
    if not message_ids:
        return {}
    rows = Attachment.objects.filter(message_id__in=message_ids).order_by("created_at", "id")
    # Newest message first; within a message, upload order (the sort is stable).
    rows = sorted(rows.values_list("message_id", "blob_id"), key=lambda row: -row[0])
    kept = rows[:MAX_IMAGES]
    blobs = ImageBlob.objects.filter(pk__in={blob_id for _, blob_id in kept}).values_list("pk", "content_type", "size")
    urls = {pk: DataUrl(content_type, size, partial(_read_blob, pk)) for pk, content_type, size in blobs}
    parts = {}
    for position, (message_id, blob_id) in enumerate(rows):
        if position < MAX_IMAGES:
            part = {"type": "image_url", "image_url": {"url": urls[blob_id]}}
        else:
            part = {"type": "text", "text": OMITTED_IMAGE}
        parts.setdefault(message_id, []).append(part)
    return parts


@database_sync_to_async
def _read_blob(blob_id):
    """The stored bytes of one image (bytes or memoryview, as the database driver gives them, not copied), or None
    once deleted (the last message using it went while a turn was being written)."""
    return ImageBlob.objects.filter(pk=blob_id).values_list("data", flat=True).first()


def _with_images(text, image_parts):
    if not image_parts:
        return text
    return _as_parts(text) + image_parts


def _as_parts(content):
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content.strip() else []


def _append(messages, role, content):
    last = messages[-1]
    if last["role"] != role:
        messages.append({"role": role, "content": content})
    elif isinstance(last["content"], str) and isinstance(content, str):
        last["content"] += "\n\n" + content
    else:
        last["content"] = _as_parts(last["content"]) + _as_parts(content)
