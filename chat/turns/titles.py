"""Conversation titles written by the model, after the first reply.

A new conversation is titled at once, without a model call, from the start of its first message
(``records.title_from``). When its first reply completes, one small request asks the model for a better title.
That title replaces the first one only while the first one is still there, so a rename by the owner always
wins; any failure leaves the first title in place. The request goes through the shared upstream budget like
every other, but no user's quota counts it: the owner did not ask for it.
"""

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings

from chat import inference
from chat.inference import ratelimit
from chat.live.frames import encode
from chat.live.hub import get_hub
from chat.logs import describe
from chat.models import TITLE_MAX, Conversation, Message
from chat.turns import records
from chat.turns.title_prompt import TITLE_PROMPT

log = logging.getLogger("chat.titles")

MAX_TOKENS = 24
TIMEOUT = 10.0  # seconds for the whole request, queueing for the budget included: a late title is no title
EXCERPT_CHARS = 1000
QUOTES = "\"'`“”‘’„«»「」"
TRAILING = ".,;:…。"

# Background title requests; the event loop keeps only weak references to tasks.
_tasks: set[asyncio.Task] = set()


@dataclass(frozen=True)
class Exchange:
    """The conversation's first message and reply, and the title it got from the message."""

    user_text: str
    reply_text: str
    fallback: str


def schedule(conversation, reply):
    """Ask for a title in the background if ``reply`` may be the conversation's first complete reply.

    Call from the event loop when a reply finishes; returns at once with the task, or None when no title is
    due. Whether this is the first reply and the title still the first one is checked inside the task.
    """
    if not settings.CHAT_AUTO_TITLES or reply.status != Message.Status.COMPLETE or not reply.content.strip():
        return None
    task = asyncio.create_task(retitle(conversation.pk, reply.pk), name=f"title-{conversation.public_id}")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


def pending():
    """The title requests still running in this process (tests await them)."""
    return set(_tasks)


async def retitle(conversation_pk, reply_pk):
    """Replace the conversation's first title with the model's and tell its watchers; True if it did."""
    try:
        exchange = await database_sync_to_async(first_exchange)(conversation_pk, reply_pk)
        if exchange is None:
            return False
        title = await ask_for_title(exchange)
        if not title or title == exchange.fallback:
            return False
        conversation = await database_sync_to_async(replace_fallback)(conversation_pk, exchange.fallback, title)
        if conversation is None:
            log.info("title: conversation=%s was renamed meanwhile; kept", conversation_pk)
            return False
        await announce(conversation, title)
        return True
    except Exception as exc:
        # A title is a nicety: whatever went wrong, the conversation keeps the title it has.
        log.warning("title: failed for conversation=%s %s", conversation_pk, describe(exc))
        return False


# The database: plain sync functions, wrapped once -------------------------------------------------------------


def first_exchange(conversation_pk, reply_pk):
    """The first message and its reply, if ``reply_pk`` is the conversation's only reply, complete, and the
    title is still the one taken from the first message; else None."""
    conversation = Conversation.objects.filter(pk=conversation_pk).first()
    if conversation is None:
        return None
    replies = list(conversation.messages.filter(role=Message.Role.ASSISTANT)[:2])
    if len(replies) != 1 or replies[0].pk != reply_pk or replies[0].status != Message.Status.COMPLETE:
        return None
    first = conversation.messages.filter(role=Message.Role.USER).first()
    if first is None or not replies[0].content.strip():
        return None
    fallback = records.title_from(first.content) or records.fallback_title_of_images(first.attachments.all())
    if conversation.title != fallback:
        return None
    return Exchange(first.content, replies[0].content, fallback)


def replace_fallback(conversation_pk, fallback, title):
    """Set ``title`` only if the stored title is still ``fallback`` (one conditional UPDATE, so a rename that
    lands first is never overwritten). Returns the conversation if it was updated, else None."""
    # A queryset update leaves updated_at alone: a new title is not activity and must not reorder the sidebar.
    if not Conversation.objects.filter(pk=conversation_pk, title=fallback).update(title=title):
        return None
    return Conversation.objects.get(pk=conversation_pk)


# The model -----------------------------------------------------------------------------------------------------


def title_request(exchange):
    """The messages of the title request: the fixed prompt, then the first exchange, each side cut short."""
    content = (
        f"<user>\n{exchange.user_text[:EXCERPT_CHARS]}\n</user>\n"
        f"<assistant>\n{exchange.reply_text[:EXCERPT_CHARS]}\n</assistant>"
    )
    return [{"role": "system", "content": TITLE_PROMPT}, {"role": "user", "content": content}]


async def ask_for_title(exchange):
    """The model's title, cleaned; None if the request failed, took too long or gave nothing usable."""
    messages = title_request(exchange)
    try:
        async with asyncio.timeout(TIMEOUT):
            answer = await _complete(messages)
    except inference.InferenceError as exc:
        # Never the exception's text: a malformed event's error quotes the model's output.
        log.info("title: model request failed %s status=%s; keeping the first title", describe(exc), exc.status)
        return None
    except TimeoutError:
        log.info("title: no answer within %g s; keeping the first title", TIMEOUT)
        return None
    title = clean(answer)
    if not title:
        log.info("title: the model's answer was not a usable title; keeping the first title")
    return title


async def _complete(messages):
    """The text of one small reply, taken through the shared upstream budget."""
    budget = ratelimit.get_budget()
    reservation = await budget.acquire(ratelimit.estimate_tokens(messages, MAX_TOKENS))
    parts, used = [], None
    # The operator's model, whatever the conversation uses: the add-on surely provides it, and the shared
    # budget's window is the one kept for it.
    stream = inference.stream_chat(messages, model=settings.INFERENCE_MODEL_ID, max_tokens=MAX_TOKENS)
    async with aclosing(stream):
        async for event in stream:
            if isinstance(event, inference.TextDelta):
                parts.append(event.text)
            elif isinstance(event, inference.Usage):
                used = event.prompt_tokens + event.completion_tokens
    if used is not None:
        await budget.settle(reservation, used)
    return "".join(parts)


def clean(answer):
    """A title from the model's answer: its first line without Markdown, quotes, a "Title:" label or a
    trailing period, on one line and short enough for the sidebar; "" if nothing is left."""
    line = next((line for line in answer.splitlines() if line.strip()), "")
    line = line.strip().lstrip("#>*-_ ").replace("**", "").replace("__", "")
    if line.lower().startswith("title:"):
        line = line[len("title:"):]
    line = line.strip().strip(QUOTES).strip().rstrip(TRAILING).strip().strip(QUOTES).strip()
    return records.title_from(line)[:TITLE_MAX]


# The watchers --------------------------------------------------------------------------------------------------


async def announce(conversation, title):
    """Send the new title to every socket on the conversation, in every process (the conversation's group holds
    exactly the processes with a socket on it, this one included)."""
    frame = encode({"type": "conversation", "id": str(conversation.public_id), "title": title})
    message = {"type": "conversation.title", "key": conversation.public_id.hex, "frame": frame}
    await get_hub().layer.group_send(conversation.group_name, message)
