"""Persistence rules of a turn, as plain sync functions (wrapped once for async callers).

Persist before calling the model, flush partial text on a timer, record the outcome once.
"""

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Sum
from django.utils import timezone

from chat.models import Attachment, Conversation, Message
from chat.turns import quotas
from chat.turns.quotas import QuotaExceeded  # noqa: F401  (raised by start_turn_records and regenerate_records)
from chat.tree import ROW_FIELDS, Tree
from chat.uploads import attachments
from chat.uploads.attachments import AttachmentUnavailable  # noqa: F401  (raised by start_turn_records)

TITLE_CHARS = 60
# Messages per page of a transcript (on page load and in history frames); older ones load as the user scrolls up.
PAGE_SIZE = 50
INTERRUPTED_ERROR = "The server restarted while this reply was being written."
_ATTACHMENTS = Prefetch("attachments", queryset=Attachment.objects.for_display())


class Busy(Exception):
    """A reply is already being written in this conversation."""


def title_from(text):
    """A title that needs no model call: the start of the first message, on one line."""
    line = " ".join(text.split())
    if len(line) <= TITLE_CHARS:
        return line
    return line[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"


class NotFound(Exception):
    """The message a frame names is not one of this conversation's, or not of the kind the frame needs."""


@dataclass
class Stored:
    """A turn as stored: what it needs before its first token, the same shape for a send, an edit and a
    regenerate.

    ``conversation`` is the row as read under the turn's lock (title and settings up to date), ``message``
    the acknowledged message: the user's or, for a regenerate, the new reply. ``created`` is False for a
    resend (a known ``client_id``): nothing was stored or is to start, and only ``message`` is meaningful.
    ``history_ids`` are the prompt's message ids, oldest first; ``new_version`` says the turn added a version
    of a message (an edit or a regenerate), so the visible conversation changed rather than grew.
    ``attachments`` are the user message's images, ``titled`` whether this send gave the conversation its
    title.
    """

    conversation: Conversation
    message: Message
    created: bool
    reply: Message = None
    history_ids: list = field(default_factory=list)
    new_version: bool = False
    attachments: list = field(default_factory=list)
    titled: bool = False


@contextmanager
def _turn_lock(conversation):
    """A transaction holding the owner's row and the conversation's, in that order.

    Serialises one user's sends (their quotas) and then one conversation's turns across processes (row locks
    on Postgres, the write lock on SQLite); always in this order, so two sends cannot deadlock.
    """
    with transaction.atomic():
        owner = get_user_model().objects.select_for_update().get(pk=conversation.owner_id)
        conv = Conversation.objects.select_for_update().get(pk=conversation.pk)
        yield owner, conv


def _refuse_while_streaming(conv):
    if conv.messages.filter(status=Message.Status.STREAMING).exists():
        raise Busy


def _find(conv, public_id, role=None):
    """The conversation's message ``public_id`` (of ``role``, if given); NotFound for anything else."""
    messages = conv.messages.filter(role=role) if role else conv.messages
    try:
        return messages.get(public_id=public_id)
    except (Message.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def _turn_state(conv, client_id):
    """``(resent, tree)``: the stored message of a resend (same ``client_id``) or None, and the message tree.

    Raises Busy while a reply streams, unless this is a resend: it is answered even while its own reply
    streams. One query for all three (they sit before every reply's first token).
    """
    key = uuid.UUID(str(client_id))
    tree_rows, resent, streaming = [], None, False
    for *tree_row, status, sent_as in conv.messages.values_list(*ROW_FIELDS, "status", "client_id"):
        tree_rows.append(tree_row)
        resent = tree_row[0] if sent_as == key else resent
        streaming = streaming or status == Message.Status.STREAMING
    if resent is not None:
        return Message.objects.prefetch_related(_ATTACHMENTS).get(pk=resent), None
    if streaming:
        raise Busy
    return None, Tree(tree_rows, conv.messages)


def _create_reply(conv, parent, *, model, worker, estimated_tokens, client_id=None):
    return Message.objects.create(
        conversation=conv,
        parent=parent,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=model,
        worker=worker,
        heartbeat_at=timezone.now(),
        estimated_tokens=estimated_tokens,
        client_id=client_id,
    )


def _show_new_version(conv, message):
    """A new version of a message is the shown one among its siblings."""
    conv.messages.filter(parent_id=message.parent_id, selected=True).exclude(pk=message.pk).update(selected=False)


def start_turn_records(
    conversation, *, text, client_id, model, worker, attachment_ids=(), estimated_tokens=None, edit=None
):
    """Store the user message, its attachments and a streaming reply placeholder in one transaction.

    The message continues the visible conversation or, with ``edit`` (the public id of an earlier user
    message), becomes a new version of that message, keeping its images.

    Returns ``Stored``. A resend with a known ``client_id`` returns the stored message (attachments
    prefetched) and ``created=False`` without starting anything; a send while a reply streams raises Busy;
    ``attachment_ids`` that are not all unsent uploads of the conversation's owner raise
    AttachmentUnavailable; a send past the owner's quotas raises QuotaExceeded; an ``edit`` of anything but
    a user message of the conversation raises NotFound. ``estimated_tokens`` is the reply's first estimate
    for the daily quota. Nothing is stored when it raises.
    """
    with _turn_lock(conversation) as (owner, conv):
        existing, tree = _turn_state(conv, client_id)
        if existing is not None:
            return Stored(conv, existing, False)
        quotas.check(owner)
        original = _find(conv, edit, Message.Role.USER) if edit is not None else None
        if original is not None and original.parent_id is not None:
            tree.select(original.parent_id)  # an edit in a hidden branch brings that branch into view
        parent = original.parent_id if original is not None else tree.leaf()
        user_message = Message(
            conversation=conv, parent_id=parent, role=Message.Role.USER, content=text, client_id=client_id
        )
        user_message.save(root=parent is None)
        attachments.claim(user_message, conv.owner_id, attachment_ids)
        if original is not None:
            attachments.copy_to(original, user_message)
            _show_new_version(conv, user_message)
        images = []  # without any to look up: one query less before the first token
        if attachment_ids or original is not None:
            images = list(Attachment.objects.for_display().filter(message=user_message))
        reply = _create_reply(conv, user_message, model=model, worker=worker, estimated_tokens=estimated_tokens)
        titled = not conv.title
        if titled:
            conv.title = title_from(text) or fallback_title_of_images(images)
        conv.save(update_fields=["title", "updated_at"])
    return Stored(conv, user_message, True, reply, tree.path_to(parent) + [user_message.pk],
                  new_version=original is not None, attachments=images, titled=titled)


def regenerate_records(conversation, *, reply_id, client_id, model, worker, estimated_tokens=None):
    """Store a streaming placeholder for a new version of the reply ``reply_id`` (the old one is kept).

    Returns ``Stored`` with the new reply as its ``message``; a resend with a known ``client_id`` returns
    the stored reply and ``created=False``. Raises NotFound for anything but a finished reply of the
    conversation, Busy and QuotaExceeded as ``start_turn_records`` does.
    """
    with _turn_lock(conversation) as (owner, conv):
        existing, tree = _turn_state(conv, client_id)
        if existing is not None:
            return Stored(conv, existing, False)
        old = _find(conv, reply_id, Message.Role.ASSISTANT)
        if old.parent_id is None:
            raise NotFound  # a reply always answers a user message
        quotas.check(owner)
        tree.select(old.parent_id)
        reply = _create_reply(
            conv, old.parent, model=model, worker=worker, estimated_tokens=estimated_tokens, client_id=client_id
        )
        _show_new_version(conv, reply)
        conv.save(update_fields=["updated_at"])
    return Stored(conv, reply, True, reply, tree.path_to(old.parent_id), new_version=True)


def select_version(conversation, public_id):
    """Show the version ``public_id`` of a message (and the versions last shown below it).

    Raises NotFound for an unknown message and Busy while a reply streams: the shown path is what the
    streaming reply continues.
    """
    with _turn_lock(conversation) as (_, conv):
        _refuse_while_streaming(conv)
        Tree.of(conv.messages).select(_find(conv, public_id).pk)


def visible_messages(conversation, *, size, before=None, at=None):
    """A page of the visible conversation, oldest first, as ``(message, branch)`` pairs (``branch``: its
    position among its versions, ``Tree.branch``), and whether older messages exist: the newest ``size`` messages (older than ``before`` if given), reaching back to ``at``
    however old it is (a search result shown in place; if it is in a hidden branch, that branch is shown).
    """
    tree = Tree.of(conversation.messages)
    path = tree.path()
    if at is not None and at.pk not in path:
        tree.select(at.pk)
        tree = Tree.of(conversation.messages)
        path = tree.path()
    end = path.index(before.pk) if before is not None and before.pk in path else len(path)
    start = max(0, end - size)
    if at is not None and at.pk in path:
        start = min(start, path.index(at.pk))
    ids = path[start:end]
    rows = {m.pk: m for m in Message.objects.filter(pk__in=ids).prefetch_related(_ATTACHMENTS, "feedback")}
    return [(rows[pk], tree.branch(pk)) for pk in ids], start > 0


def usage_totals(conversation):
    """Tokens used by all the conversation's replies, every version counted (they were all paid for)."""
    totals = conversation.messages.aggregate(prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"))
    return {name: value or 0 for name, value in totals.items()}


def fallback_title_of_images(images):
    """A title for a first message of ``images`` only: the first file's name."""
    first = next(iter(images), None)
    return title_from(first.filename if first else "") or "Image"


def record_estimate(reply_pk, tokens):
    """The reply's estimate once its whole prompt is known (the first one counted only the new message)."""
    Message.objects.filter(pk=reply_pk, status=Message.Status.STREAMING).update(estimated_tokens=tokens)


def flush_partial(reply_pk, content, reasoning="", tool_calls=()):
    """Save what is written so far; a no-op once the reply has finished."""
    Message.objects.filter(pk=reply_pk, status=Message.Status.STREAMING).update(
        content=content, reasoning=reasoning, tool_calls=list(tool_calls), heartbeat_at=timezone.now()
    )


def finish_reply(
    reply_pk, *, content, status, error="", finish_reason="", usage=None, first_token_at=None, reasoning="",
    tool_calls=(), model=None,
):
    """Record the outcome of a reply in one update and return the stored message."""
    usage = usage or {}
    now = timezone.now()
    # The model that answered, when the conversation's settings changed after the reply was stored.
    changed = {"model": model} if model else {}
    Message.objects.filter(pk=reply_pk).update(
        **changed,
        content=content,
        reasoning=reasoning,
        tool_calls=list(tool_calls),
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
