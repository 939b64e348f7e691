"""The life of one turn: store, stream from the model, fan out, flush, record the outcome once.

A turn runs as an asyncio task owned by the process (through the hub), never by a socket: closing or
reloading a tab changes who watches the reply, not whether it is written.
"""

import asyncio
import logging
import math
import time
from contextlib import aclosing

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from . import inference, ratelimit, store
from .hub import RELAY_INTERVAL, encode, get_hub
from .models import Message
from .payloads import build_messages
from .rendering import StreamRenderer

log = logging.getLogger("chat.turn")

# Without text to save, a streaming reply still proves its writer is alive this often.
HEARTBEAT_EVERY = 10.0
INTERNAL_ERROR = "Something went wrong on our side while writing this reply. Please try again."


class ShuttingDown(Exception):
    """This process is restarting and starts no new replies."""


def message_frame(message, **kwargs):
    return encode({"type": "message", "message": message.as_frame(**kwargs)})


async def drain(grace):
    """Start no new turns; give running ones ``grace`` seconds, then stop them as ``interrupted``.

    Called once on shutdown (chatsite/asgi.py). Returns when every turn of this process has saved its outcome.
    """
    hub = get_hub()
    hub.draining = True
    tasks = [turn.task for turn in list(hub.turns.values()) if turn.task is not None]
    if not tasks:
        return
    log.info("shutdown: waiting up to %g s for %d replies", grace, len(tasks))
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()  # the turn saves its text so far as interrupted
    if pending:
        await asyncio.wait(pending, timeout=10)
    log.info("shutdown: %d replies finished, %d interrupted", len(tasks) - len(pending), len(pending))


async def start_turn(conversation, *, text, client_id, attachment_ids=()):
    """Store the user message (with the uploads ``attachment_ids``) and a reply placeholder, then start
    writing the reply.

    Returns ``(user_message, created)``. Raises ``store.Busy`` while another reply streams and
    ``store.AttachmentUnavailable`` for attachments that are not the owner's unsent uploads,
    ``store.QuotaExceeded`` past the owner's quotas and ``ShuttingDown`` while the process drains.
    """
    hub = get_hub()
    if hub.draining:
        raise ShuttingDown
    await hub.start()
    had_title = bool(conversation.title)
    first_estimate = ratelimit.estimate_tokens([{"content": text}], settings.INFERENCE_MAX_TOKENS)
    user_message, reply, messages = await database_sync_to_async(_store_turn)(
        conversation, text=text, client_id=client_id, model=settings.INFERENCE_MODEL_ID, worker=hub.channel_name,
        attachment_ids=attachment_ids, estimated_tokens=first_estimate,
    )
    if reply is None:
        return user_message, False
    turn = Turn(hub, conversation, reply, messages)
    if turn.estimate != first_estimate:
        # The whole prompt's estimate only feeds quota checks of later sends: not worth delaying this reply.
        turn._spawn(database_sync_to_async(store.record_estimate)(reply.pk, turn.estimate))
    frames = [message_frame(user_message), message_frame(reply)]
    if not had_title:
        frames.append(encode({"type": "conversation", "id": str(conversation.public_id), "title": conversation.title}))
    for frame in frames:
        await hub.send_local(turn.key, frame)
    await hub.announce_turn(conversation.group_name, turn.key, turn.reply_id, frames)
    turn.start()
    return user_message, True


def _store_turn(conversation, **fields):
    """Store the turn and build its prompt in one trip to the database thread (both sit before the first token).

    Returns ``(user_message, reply, messages)``; ``reply`` is None for a resend of a stored message.
    """
    user_message, reply, created = store.start_turn_records(conversation, **fields)
    if not created:
        return user_message, None, None
    return user_message, reply, build_messages(conversation, before=reply)


class Turn:
    def __init__(self, hub, conversation, reply, messages):
        self.hub = hub
        self.key = conversation.public_id.hex
        self.reply = reply
        self.reply_id = str(reply.public_id)
        self.messages = messages
        self.estimate = ratelimit.estimate_tokens(messages, settings.INFERENCE_MAX_TOKENS)
        self.parts = []  # text delivered to watchers, in order
        # Markdown rendered as the text grows: finished blocks once, only the open tail again.
        self.renderer = StreamRenderer(min_interval=settings.CHAT_RENDER_INTERVAL)
        self.blocks = []  # rendered HTML of the finished blocks, in order
        self.tail = ""
        self.pending = []  # text received from the model, not yet delivered
        self.seq = 0
        self.remote = set()  # channels of other processes watching this reply
        self.remote_frames = []
        self.stop_requested = False
        self.first_token_at = None
        self.usage = None
        self.finish_reason = ""
        self.task = None
        self._lock = asyncio.Lock()
        self._last_sent = 0.0
        self._timer = None
        self._background = set()
        self._started = time.monotonic()

    def start(self):
        self.hub.register_turn(self.key, self)
        self.task = asyncio.create_task(self.run(), name=f"turn-{self.reply_id}")

    def stop(self):
        """Stop writing; the text so far is kept and the reply is marked stopped."""
        if self.task is not None and not self.task.done():
            self.stop_requested = True
            self.task.cancel()

    def text(self):
        return "".join(self.parts)

    def snapshot_frame(self):
        return message_frame(self.reply, seq=self.seq, content=self.text(), html="".join(self.blocks), tail=self.tail)

    async def add_remote(self, channel):
        self.remote.add(channel)
        await self.hub.relay(channel, self.key, [self.snapshot_frame()])

    # The stream --------------------------------------------------------------------------------

    async def run(self):
        flusher = asyncio.create_task(self._flush_forever())
        status, error, cancelled = Message.Status.COMPLETE, "", False
        try:
            await self._consume()
        except inference.InferenceError as exc:
            status, error = Message.Status.ERROR, exc.user_message
        except asyncio.CancelledError:
            cancelled = not self.stop_requested
            status = Message.Status.STOPPED if self.stop_requested else Message.Status.INTERRUPTED
            error = "" if self.stop_requested else store.INTERRUPTED_ERROR
        except Exception:
            log.exception("turn failed reply=%s", self.reply_id)
            status, error = Message.Status.ERROR, INTERNAL_ERROR
        finally:
            flusher.cancel()
        await self._finish(status, error)
        if cancelled:
            raise asyncio.CancelledError

    async def _consume(self):
        # Queue here, before any request, while the add-on's minute is spent by this or any other process:
        # a stop while queued cancels this wait and nothing is sent.
        budget = ratelimit.get_budget()
        reservation = await budget.acquire(self.estimate, on_wait=self._on_queued)
        stream = inference.stream_chat(self.messages, model=self.reply.model, on_retry=self._on_retry)
        # aclosing: a stop that lands while this task awaits a socket still closes the HTTP response now.
        async with aclosing(stream):
            async for event in stream:
                if isinstance(event, inference.TextDelta) and event.text:
                    await self._add_text(event.text)
                elif isinstance(event, inference.Usage):
                    self.usage = {"prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens}
                elif isinstance(event, inference.Finish):
                    self.finish_reason = event.reason or ""
        if self.usage:
            await self._settle(budget, reservation)

    async def _settle(self, budget, reservation):
        """Replace the estimate with the reported usage; the reply matters more than the bookkeeping."""
        used = (self.usage.get("prompt_tokens") or 0) + (self.usage.get("completion_tokens") or 0)
        try:
            await budget.settle(reservation, used)
        except Exception:
            log.warning("budget settle failed reply=%s", self.reply_id, exc_info=True)

    async def _on_queued(self, seconds):
        detail = f"Queued: the model's rate limit is reached; starting in about {max(1, math.ceil(seconds))} s."
        await self._broadcast(encode({"type": "status", "id": self.reply_id, "detail": detail}))

    async def _on_retry(self, attempt, max_attempts, delay, error):
        detail = f"{error.user_message} Retrying in {delay:.0f} s ({attempt}/{max_attempts})."
        await self._broadcast(encode({"type": "status", "id": self.reply_id, "detail": detail}))

    # Delivery: the first delta goes out at once, later ones coalesce to one frame per interval ---

    async def _add_text(self, text):
        if self.first_token_at is None:
            self.first_token_at = timezone.now()
        self.pending.append(text)
        loop = asyncio.get_running_loop()
        wait = self._last_sent + settings.CHAT_DELTA_INTERVAL - loop.time()
        if wait <= 0:
            await self._deliver()
        elif self._timer is None:
            self._timer = loop.call_later(wait, self._on_timer)

    def _on_timer(self):
        self._timer = None
        self._spawn(self._deliver())

    async def _deliver(self):
        """Send what arrived since the last frame: its text, newly finished blocks and the re-rendered tail."""
        async with self._lock:
            text = "".join(self.pending)
            self.pending.clear()
            if text:
                self.parts.append(text)
                self.renderer.feed(text)
            update = self.renderer.flush()
            if update is None and self.renderer.dirty and self._timer is None:
                # The renderer is throttled: render the tail once more even if the model pauses here.
                self._timer = asyncio.get_running_loop().call_later(settings.CHAT_RENDER_INTERVAL, self._on_timer)
            if not text and update is None:
                return
            self.seq += 1
            self._last_sent = asyncio.get_running_loop().time()
            frame = {"type": "delta", "id": self.reply_id, "seq": self.seq, "text": text}
            if update is not None:
                self.blocks.extend(update.committed)
                self.tail = update.tail
                frame.update(blocks=update.committed, tail=update.tail)
            await self._broadcast(encode(frame))

    async def _broadcast(self, frame):
        await self.hub.send_local(self.key, frame)
        if self.remote:
            if not self.remote_frames:
                asyncio.get_running_loop().call_later(RELAY_INTERVAL, self._spawn_relay)
            self.remote_frames.append(frame)

    def _spawn_relay(self):
        self._spawn(self._relay_pending())

    async def _relay_pending(self):
        frames, self.remote_frames = self.remote_frames, []
        for channel in list(self.remote):
            if frames:
                await self.hub.relay(channel, self.key, frames)

    def _spawn(self, coro):
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Persistence ---------------------------------------------------------------------------------

    async def _flush_forever(self):
        """Save the partial text about once a second (never per token); a failed flush is retried."""
        saved_len, saved_at = 0, time.monotonic()
        while True:
            await asyncio.sleep(settings.CHAT_FLUSH_INTERVAL)
            text = self.text()
            if len(text) == saved_len and time.monotonic() - saved_at < HEARTBEAT_EVERY:
                continue
            try:
                await database_sync_to_async(store.flush_partial)(self.reply.pk, text)
            except Exception:
                log.warning("flush failed reply=%s; retrying at the next tick", self.reply_id, exc_info=True)
                continue
            saved_len, saved_at = len(text), time.monotonic()

    async def _finish(self, status, error):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._deliver()
        self.blocks.extend(self.renderer.finish().committed)
        reply = await self._save_outcome(status, error)
        self.hub.unregister_turn(self.key, self)
        # The finished blocks equal a one-shot render of the whole text (tests/test_rendering.py).
        frame = message_frame(reply, seq=self.seq, html="".join(self.blocks))
        await self.hub.send_local(self.key, frame)
        self.remote_frames.append(frame)
        await self._relay_pending()
        self._log(reply)

    async def _save_outcome(self, status, error):
        """Record the outcome once; a database hiccup gets retried rather than losing the reply."""
        for attempt in range(4):
            try:
                return await database_sync_to_async(store.finish_reply)(
                    self.reply.pk,
                    content=self.text(),
                    status=status,
                    error=error,
                    finish_reason=self.finish_reason,
                    usage=self.usage,
                    first_token_at=self.first_token_at,
                )
            except Exception:
                if attempt == 3:
                    raise
                log.warning("final save failed reply=%s; retrying", self.reply_id, exc_info=True)
                await asyncio.sleep(0.5 * 2**attempt)

    def _log(self, reply):
        # One greppable line per turn: ids, timings, usage, outcome; never message text.
        log.info(
            "turn reply=%s conversation=%s status=%s model=%s ttft_ms=%s duration_ms=%d "
            "prompt_tokens=%s completion_tokens=%s deltas=%d finish=%s",
            self.reply_id,
            self.key,
            reply.status,
            reply.model,
            int(reply.time_to_first_token * 1000) if reply.time_to_first_token is not None else "-",
            (time.monotonic() - self._started) * 1000,
            reply.prompt_tokens,
            reply.completion_tokens,
            self.seq,
            reply.finish_reason or "-",
        )
