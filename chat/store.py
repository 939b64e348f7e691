"""Persistence rules of a turn, as plain sync functions (wrapped once for async callers).

Persist before calling the model, flush partial text on a timer, record the outcome once.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.http import Http404
from django.utils import timezone

from . import attachments, quotas
from .attachments import AttachmentUnavailable  # noqa: F401  (raised by start_turn_records)
from .models import Attachment, Conversation, Message
from .quotas import QuotaExceeded  # noqa: F401  (raised by start_turn_records)

TITLE_CHARS = 60
INTERRUPTED_ERROR = "The server restarted while this reply was being written."
_ATTACHMENTS = Prefetch("attachments", queryset=Attachment.objects.for_display())


class Busy(Exception):
    """A reply is already being written in this conversation."""


def get_conversation_for_user(user, public_id):
    """The one ownership check for views and sockets: another user's conversation is a 404."""
    if not user.is_authenticated:
        raise Http404
    try:
        return Conversation.objects.get(public_id=public_id, owner=user)
    except (Conversation.DoesNotExist, ValueError):
        raise Http404 from None


def title_from(text):
    """A title that needs no model call: the start of the first message, on one line."""
    line = " ".join(text.split())
    if len(line) <= TITLE_CHARS:
        return line
    return line[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"


def start_turn_records(conversation, *, text, client_id, model, worker, attachment_ids=(), estimated_tokens=None):
    """Store the user message, its attachments and a streaming reply placeholder in one transaction.

    Returns ``(user_message, reply, created)``, the user message with its attachments prefetched. A resend
    with a known ``client_id`` returns the stored message and ``created=False`` without starting anything;
    a send while a reply streams raises Busy; ``attachment_ids`` that are not all unsent uploads of the
    conversation's owner raise AttachmentUnavailable; a send past the owner's quotas raises QuotaExceeded.
    ``estimated_tokens`` is the reply's first estimate for the daily quota. Nothing is stored when it raises.
    """
    with transaction.atomic():
        # Serialise one user's sends (their quotas) and then one conversation's across processes (row locks
        # on Postgres, the write lock on SQLite); always in this order, so two sends cannot deadlock.
        owner = get_user_model().objects.select_for_update().get(pk=conversation.owner_id)
        conv = Conversation.objects.select_for_update().get(pk=conversation.pk)
        existing = conv.messages.filter(client_id=client_id).prefetch_related(_ATTACHMENTS).first()
        if existing is not None:
            return existing, None, False
        if conv.messages.filter(status=Message.Status.STREAMING).exists():
            raise Busy
        quotas.check(owner)
        user_message = Message.objects.create(
            conversation=conv, role=Message.Role.USER, content=text, client_id=client_id
        )
        attachments.claim(user_message, conv.owner_id, attachment_ids)
        prefetch_related_objects([user_message], _ATTACHMENTS)
        reply = Message.objects.create(
            conversation=conv,
            role=Message.Role.ASSISTANT,
            status=Message.Status.STREAMING,
            model=model,
            worker=worker,
            heartbeat_at=timezone.now(),
            estimated_tokens=estimated_tokens,
        )
        if not conv.title:
            conv.title = title_from(text) or _attachments_title(user_message)
        conv.save(update_fields=["title", "updated_at"])
    conversation.title = conv.title
    return user_message, reply, True


def _attachments_title(message):
    """A title for a first message of images only: the first file's name."""
    first = next(iter(message.attachments.all()), None)
    return title_from(first.filename if first else "") or "Image"


def record_estimate(reply_pk, tokens):
    """The reply's estimate once its whole prompt is known (the first one counted only the new message)."""
    Message.objects.filter(pk=reply_pk, status=Message.Status.STREAMING).update(estimated_tokens=tokens)


def flush_partial(reply_pk, content):
    """Save the text written so far; a no-op once the reply has finished."""
    Message.objects.filter(pk=reply_pk, status=Message.Status.STREAMING).update(
        content=content, heartbeat_at=timezone.now()
    )


def finish_reply(reply_pk, *, content, status, error="", finish_reason="", usage=None, first_token_at=None):
    """Record the outcome of a reply in one update and return the stored message."""
    usage = usage or {}
    now = timezone.now()
    Message.objects.filter(pk=reply_pk).update(
        content=content,
        status=status,
        error=error,
        finish_reason=finish_reason or "",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        first_token_at=first_token_at,
        finished_at=now,
        heartbeat_at=now,
    )
    reply = Message.objects.select_related("conversation").get(pk=reply_pk)
    Conversation.objects.filter(pk=reply.conversation_id).update(updated_at=now)
    return reply


def streaming_replies(conversation):
    return list(conversation.messages.filter(status=Message.Status.STREAMING))


def _stale(messages):
    """Streaming replies whose writer stopped sending heartbeats: the process writing them died."""
    cutoff = timezone.now() - timedelta(seconds=settings.CHAT_STALE_AFTER)
    return messages.filter(status=Message.Status.STREAMING, heartbeat_at__lt=cutoff)


def _interrupt(replies):
    return replies.update(status=Message.Status.INTERRUPTED, error=INTERRUPTED_ERROR, finished_at=timezone.now())


def expire_stale_replies(conversation):
    """Mark the conversation's stale replies as interrupted."""
    return _interrupt(_stale(conversation.messages))


def sweep_stale_replies(limit=500):
    """Mark every reply, in any conversation, whose writer stopped sending heartbeats as interrupted.

    Returns the replies this call finished (with their conversations), for the watchers to be told. Safe to
    run in every process at once: a reply is finished by exactly one UPDATE.
    """
    stale = _stale(Message.objects)
    ids = list(stale.values_list("pk", flat=True)[:limit])
    finished = []
    for pk in ids:
        # One row at a time: the row count says whether this process, not another sweeper, finished it.
        if _interrupt(stale.filter(pk=pk)):
            finished.append(pk)
    return list(Message.objects.filter(pk__in=finished).select_related("conversation").prefetch_related(_ATTACHMENTS))


def messages_by_ids(conversation, ids):
    return list(conversation.messages.filter(public_id__in=ids).prefetch_related(_ATTACHMENTS))
