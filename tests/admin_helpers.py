"""Data builders for the review console tests: conversations, messages, versions, feedback and images with the
times and figures a test fixes. The personas are fixtures in tests/conftest.py.
"""

import datetime
import hashlib

from django.urls import reverse
from django.utils import timezone

from chat.models import Attachment, Conversation, Feedback, ImageBlob, Message


def transcript_url(conv):
    """Where a reviewer reads ``conv`` in the admin."""
    return reverse("admin:chat_conversation_change", args=[conv.pk])


def at(day, hour=12, minute=0, second=0):
    """An aware UTC datetime on 2020-01-``day``."""
    return datetime.datetime(2020, 1, day, hour, minute, second, tzinfo=datetime.timezone.utc)


def conversation(owner, title="", created=None, updated=None):
    conv = Conversation.objects.create(owner=owner, title=title)
    changes = {k: v for k, v in {"created_at": created, "updated_at": updated}.items() if v is not None}
    if changes:
        # auto_now / auto_now_add ignore assigned values; an update sets them.
        Conversation.objects.filter(pk=conv.pk).update(**changes)
        conv.refresh_from_db()
    return conv


def message(conv, role="assistant", content="", *, status="complete", model="", prompt=None, completion=None,
            created=None, ttft=None, duration=None, error="", finish_reason="", reasoning="", tool_calls=()):
    """A stored message at the end of the visible conversation; ``created`` fixes its time, ``ttft``/``duration``
    (seconds) its first token and end."""
    msg = Message.objects.create(
        conversation=conv, role=role, content=content, status=status, model=model, prompt_tokens=prompt,
        completion_tokens=completion, error=error, finish_reason=finish_reason, reasoning=reasoning,
        tool_calls=list(tool_calls),
    )
    created = created or msg.created_at
    changes = {"created_at": created}
    if ttft is not None:
        changes["first_token_at"] = created + datetime.timedelta(seconds=ttft)
    if duration is not None:
        changes["finished_at"] = created + datetime.timedelta(seconds=duration)
    Message.objects.filter(pk=msg.pk).update(**changes)
    msg.refresh_from_db()
    return msg


def version(original, content, **fields):
    """A new version of ``original`` (an edit, or a regenerated reply), shown instead of it as the app does."""
    msg = Message(conversation=original.conversation, parent=original.parent, role=original.role, content=content,
                  **fields)
    msg.save(root=original.parent_id is None)
    Message.objects.filter(conversation=original.conversation, parent=original.parent_id).exclude(pk=msg.pk).update(
        selected=False
    )
    return msg


def tool_step(name, arguments, result, *, is_error=False, call_id="call_1"):
    """A finished tool step as a reply stores it."""
    return {"id": call_id, "name": name, "arguments": arguments, "result": result, "is_error": is_error,
            "status": "done"}


def exchange(conv, question, answer, **reply):
    """A user message and its assistant reply."""
    return message(conv, "user", question), message(conv, "assistant", answer, **reply)


def feedback(msg, user, rating, comment=""):
    return Feedback.objects.create(message=msg, user=user, rating=rating, comment=comment)


def image(msg, filename="cat.png", payload=b"png-bytes"):
    blob, _ = ImageBlob.objects.get_or_create(
        sha256=hashlib.sha256(payload).hexdigest(),
        defaults={"data": payload, "content_type": "image/png", "width": 40, "height": 30, "size": len(payload)},
    )
    return Attachment.objects.create(owner=msg.conversation.owner, message=msg, blob=blob, filename=filename)


def today_at(hour=12):
    now = timezone.localtime()
    return now.replace(hour=hour, minute=0, second=0, microsecond=0)
