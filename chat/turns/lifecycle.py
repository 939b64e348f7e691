"""The entry points of a turn: start one, regenerate a reply, show another version, drain on shutdown.

Each stores its rows first (chat/turns/records.py), then a ``Turn`` (chat/turns/turn.py) writes the reply as
an asyncio task owned by the process. The frames every watcher of a conversation is sent when its visible
messages change (``history``) are built here too.
"""

import asyncio
import logging
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings

from chat.inference import ratelimit
from chat.live import frames
from chat.live.hub import get_hub
from chat.models import Message
from chat.turns import options, records, sweeper
from chat.turns.prompt import build_messages
from chat.tree import ONLY
from chat.turns.turn import Turn

log = logging.getLogger("chat.turn")


class ShuttingDown(Exception):
    """This process is restarting and starts no new replies."""


async def ready_hub():
    """This process's hub, started, with what the turns add to it: the stale-reply sweeper and the stored
    outcome of a reply whose writer finished before a watch reached it (``turn.gone``)."""
    hub = get_hub()
    hub.read_outcome = _stored_outcome
    sweeper.start(hub)
    await hub.start()
    return hub


async def drain(grace):
    """Start no new turns; give running ones ``grace`` seconds, then stop them as ``interrupted``.

    Called once on shutdown (chat/socket/lifespan.py). Returns when every turn of this process has saved its
    outcome.
    """
    hub = get_hub()
    hub.draining = True
    tasks = [turn.task for turn in hub.running() if turn.task is not None]
    if not tasks:
        return
    log.info("shutdown: waiting up to %g s for %d replies", grace, len(tasks))
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()  # the turn saves its text so far as interrupted
    if pending:
        await asyncio.wait(pending, timeout=10)
    log.info("shutdown: %d replies finished, %d interrupted", len(tasks) - len(pending), len(pending))


async def start_turn(conversation, *, text, client_id, attachment_ids=(), edit=None):
    """Store the user message (with the uploads ``attachment_ids``) and a reply placeholder, then start
    writing the reply. With ``edit`` (a user message's public id) the message is a new version of that one.

    Returns ``(user_message, created)``. Raises ``records.Busy`` while another reply streams and
    ``records.AttachmentUnavailable`` for attachments that are not the owner's unsent uploads,
    ``records.QuotaExceeded`` past the owner's quotas, ``records.NotFound`` for an ``edit`` of anything but a
    user message of the conversation and ``ShuttingDown`` while the process drains.
    """
    hub = await _open_hub()
    first_estimate = ratelimit.estimate_tokens([{"content": text}], settings.INFERENCE_MAX_TOKENS)
    launch = await database_sync_to_async(_store_start)(
        conversation, text=text, client_id=client_id, model=options.model_id(conversation),
        worker=hub.channel_name, attachment_ids=attachment_ids, estimated_tokens=first_estimate, edit=edit,
    )
    if launch.stored.created:
        await _launch(hub, launch, first_estimate)
    return launch.stored.message, launch.stored.created


async def regenerate(conversation, *, reply_id, client_id):
    """Write a new version of the reply ``reply_id``. Returns ``(reply, created)``; raises like start_turn."""
    hub = await _open_hub()
    launch = await database_sync_to_async(_store_regenerate)(
        conversation, reply_id=reply_id, client_id=client_id, model=options.model_id(conversation),
        worker=hub.channel_name,
    )
    if launch.stored.created:
        await _launch(hub, launch, None)
    return launch.stored.message, launch.stored.created


async def show_version(conversation, message_id):
    """Show another version of a message to every watcher of the conversation, in every process."""
    hub = await _open_hub()
    frame = await database_sync_to_async(_switch)(conversation, message_id)
    await hub.publish(conversation.group_name, conversation.public_id.hex, [frame])


def history_frame(conversation):
    """The encoded ``history`` frame of the conversation's visible messages (the newest page)."""
    return _history(*records.visible_messages(conversation, size=records.PAGE_SIZE), conversation)


async def _open_hub():
    if get_hub().draining:
        raise ShuttingDown
    return await ready_hub()


async def _stored_outcome(reply_id):
    reply = await database_sync_to_async(Message.objects.filter(public_id=reply_id).first)()
    return frames.message_frame(reply) if reply is not None else None


@dataclass
class Launch:
    """A stored turn and what starting it needs, all read before the first token: the prompt, the reply's
    position among its versions and the frames watchers are sent before the reply streams."""

    stored: records.Stored
    prompt: list = None
    branch: dict = None
    frames: list = field(default_factory=list)


def _store_start(conversation, **fields):
    return _prepare(records.start_turn_records(conversation, **fields))


def _store_regenerate(conversation, **fields):
    return _prepare(records.regenerate_records(conversation, **fields))


def _prepare(stored):
    """The prompt and first frames of ``stored``, in the same trip to the database thread as storing it;
    nothing but the acknowledgement for a resend."""
    if not stored.created:
        return Launch(stored)
    conversation = stored.conversation
    if stored.new_version:
        # The visible conversation changed. The new reply ends it, its position already worked out.
        shown, has_older = records.visible_messages(conversation, size=records.PAGE_SIZE)
        branch, first = shown[-1][1], [_history(shown, has_older, conversation)]
    else:
        branch = ONLY  # it continues the conversation: nothing has other versions
        first = [frames.message_frame(stored.message, attachments=stored.attachments, branch=ONLY),
                 frames.message_frame(stored.reply, attachments=(), branch=ONLY)]
    if stored.titled:
        first.append(frames.encode({"type": "conversation", "id": str(conversation.public_id),
                                    "title": conversation.title}))
    return Launch(stored, build_messages(conversation, path=stored.history_ids), branch, first)


async def _launch(hub, launch, first_estimate):
    stored = launch.stored
    turn = Turn(hub, stored.conversation, stored.reply, messages=launch.prompt, branch=launch.branch,
                first_exchange=len(stored.history_ids) == 1)
    estimate = ratelimit.estimate_tokens(launch.prompt, turn.requests.options["max_tokens"])
    if estimate != first_estimate:
        # The whole prompt's estimate only feeds quota checks of later sends: not worth delaying this reply.
        turn.spawn(database_sync_to_async(records.record_estimate)(stored.reply.pk, estimate))
    key = stored.conversation.public_id.hex
    for frame in launch.frames:
        await hub.send_local(key, frame)
    await hub.announce_turn(stored.conversation.group_name, key, turn.reply_id, launch.frames)
    turn.start()


def _switch(conversation, message_id):
    records.select_version(conversation, message_id)
    return history_frame(conversation)


def _history(shown, has_older, conversation):
    messages = [_history_entry(message, branch, conversation) for message, branch in shown]
    return frames.encode({"type": "history", "messages": messages, "has_older": has_older})


def _history_entry(message, branch, conversation):
    """A message of a history frame; replies carry the owner's vote (re-shown messages keep their thumbs)."""
    vote = {}
    if message.role == Message.Role.ASSISTANT:
        votes = [f.rating for f in message.feedback.all() if f.user_id == conversation.owner_id]
        vote["rating"] = votes[0] if votes else None
    return frames.message_data(message, attachments=frames.stored_attachments(message), branch=branch, **vote)
