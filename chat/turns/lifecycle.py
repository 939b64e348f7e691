"""The life of one turn: store, stream from the model, fan out, flush, record the outcome once.

A turn runs as an asyncio task owned by the process (through the hub), never by a socket: closing or
reloading a tab changes who watches the reply, not whether it is written.
"""

import asyncio
import itertools
import logging
import math
import time
from contextlib import aclosing
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from chat import inference
from chat.inference import ratelimit
from chat.live.hub import RELAY_INTERVAL, encode, get_hub
from chat.models import Message
from chat.rendering.stream import StreamRenderer
from chat.turns import options, records, titles, tools
from chat.turns.prompt import build_messages
from chat.turns.tree import ONLY

log = logging.getLogger("chat.turn")

# Without text to save, a streaming reply still proves its writer is alive this often.
HEARTBEAT_EVERY = 10.0
STOPPED_TOOL = "Stopped before the tool finished."
NOT_RUN = "Not run: this reply reached its limit of tool rounds."
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


async def start_turn(conversation, *, text, client_id, attachment_ids=(), edit=None):
    """Store the user message (with the uploads ``attachment_ids``) and a reply placeholder, then start
    writing the reply. With ``edit`` (a user message's public id) the message is a new version of that one.

    Returns ``(user_message, created)``. Raises ``records.Busy`` while another reply streams and
    ``records.AttachmentUnavailable`` for attachments that are not the owner's unsent uploads,
    ``records.QuotaExceeded`` past the owner's quotas, ``records.NotFound`` for an ``edit`` of anything but a
    user message of the conversation and ``ShuttingDown`` while the process drains.
    """
    hub = await _open_hub()
    had_title = bool(conversation.title)
    first_estimate = ratelimit.estimate_tokens([{"content": text}], settings.INFERENCE_MAX_TOKENS)
    start = await database_sync_to_async(_store_turn)(
        conversation, records.start_turn_records, text=text, client_id=client_id,
        model=options.model_id(conversation),
        worker=hub.channel_name, attachment_ids=attachment_ids, estimated_tokens=first_estimate, edit=edit,
    )
    if start.created:
        if not had_title:
            start.frames.append(encode({"type": "conversation", "id": str(conversation.public_id),
                                        "title": conversation.title}))
        await _launch(hub, start, first_estimate)
    return start.message, start.created


async def regenerate(conversation, *, reply_id, client_id):
    """Write a new version of the reply ``reply_id``. Returns ``(reply, created)``; raises like start_turn."""
    hub = await _open_hub()
    start = await database_sync_to_async(_store_turn)(
        conversation, records.regenerate_records, reply_id=reply_id, client_id=client_id,
        model=options.model_id(conversation), worker=hub.channel_name,
    )
    if start.created:
        await _launch(hub, start, None)
    return start.message, start.created


async def show_version(conversation, message_id):
    """Show another version of a message to every watcher of the conversation, in every process."""
    hub = await _open_hub()
    frame = await database_sync_to_async(_switch)(conversation, message_id)
    await hub.layer.group_send(conversation.group_name, {"type": "relay", "key": conversation.public_id.hex,
                                                         "frames": [frame]})


async def _open_hub():
    hub = get_hub()
    if hub.draining:
        raise ShuttingDown
    await hub.start()
    return hub


async def _launch(hub, start, first_estimate):
    turn = Turn(hub, start.conversation, start.reply, start.messages)
    if turn.estimate != first_estimate:
        # The whole prompt's estimate only feeds quota checks of later sends: not worth delaying this reply.
        turn._spawn(database_sync_to_async(records.record_estimate)(start.reply.pk, turn.estimate))
    for frame in start.frames:
        await hub.send_local(turn.key, frame)
    await hub.announce_turn(start.conversation.group_name, turn.key, turn.reply_id, start.frames)
    turn.start()


@dataclass
class TurnStart:
    conversation: object
    message: object  # the acknowledged message: the user's, or the new reply of a regenerate
    created: bool
    reply: object = None
    messages: list = None  # the prompt
    frames: list = field(default_factory=list)  # what watchers are sent before the first token


def _store_turn(conversation, store_records, **fields):
    """Store the turn and build its prompt and first frames in one trip to the database thread (all of it
    sits before the first token). ``store_records`` is ``records.start_turn_records`` or
    ``records.regenerate_records``; nothing but the acknowledgement is built for a resend."""
    if store_records is records.regenerate_records:
        reply, created = store_records(conversation, **fields)
        message = reply
    else:
        message, reply, created = store_records(conversation, **fields)
    if not created:
        return TurnStart(conversation, message, False)
    if store_records is records.start_turn_records and fields.get("edit") is None:
        reply.branch = ONLY  # it continues the conversation: nothing has other versions
        frames = [message_frame(message, branch=ONLY), message_frame(reply)]
    else:
        # A new version: the visible conversation changed. The new reply ends it, its position already worked out.
        shown, has_older = records.visible_messages(conversation, size=records.PAGE_SIZE)
        reply.branch = shown[-1].branch
        frames = [_history(shown, has_older, conversation)]
    return TurnStart(conversation, message, True, reply, build_messages(conversation, before=reply), frames)


def _switch(conversation, message_id):
    records.select_version(conversation, message_id)
    return history_frame(conversation)


def history_frame(conversation):
    return _history(*records.visible_messages(conversation, size=records.PAGE_SIZE), conversation)


def _history(messages, has_older, conversation):
    return encode({"type": "history", "messages": [_with_rating(m, conversation) for m in messages],
                   "has_older": has_older})


def _with_rating(message, conversation):
    """A message of a history frame, with the owner's vote on it (re-shown messages keep their thumbs)."""
    frame = message.as_frame()
    if message.role == Message.Role.ASSISTANT:
        votes = [f.rating for f in message.feedback.all() if f.user_id == conversation.owner_id]
        frame["rating"] = votes[0] if votes else None
    return frame


class Turn:
    def __init__(self, hub, conversation, reply, messages):
        self.hub = hub
        self.key = conversation.public_id.hex
        self.reply = reply
        self.reply_id = str(reply.public_id)
        self.messages = messages
        self.options = options.request_options(conversation)
        self.reply.model = self.options["model"]
        # Tools are sent in one fixed order on every request of every turn: the list is part of the cached prefix.
        self.tools = tools.definitions() if conversation.tools_enabled else None
        # Tools act for the conversation's owner (search_conversations reads only their conversations).
        self.user = get_user_model()(pk=conversation.owner_id)
        self.estimate = ratelimit.estimate_tokens(messages, self.options["max_tokens"])
        self.parts = []  # text delivered to watchers, in order
        self.reasoning = []  # thinking delivered to watchers, in order
        self.steps = []  # tool steps: {"id", "name", "arguments", "result", "is_error", "status"}
        # Markdown rendered as the text grows: finished blocks once, only the open tail again.
        self.renderer = StreamRenderer(min_interval=settings.CHAT_RENDER_INTERVAL)
        self.blocks = []  # rendered HTML of the finished blocks, in order
        self.tail = ""
        self.pending = []  # text received from the model, not yet delivered
        self.pending_reasoning = []
        self.seq = 0
        self.remote = set()  # channels of other processes watching this reply
        self.remote_frames = []
        self.stop_requested = False
        self.first_token_at = None
        self.usage = None
        self.finish_reason = ""
        self.task = None
        # The next text or thinking starts a new paragraph: the model resumed after tool calls.
        self._new_round = self._new_thinking = False
        self._round_start = 0
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
        return message_frame(
            self.reply, seq=self.seq, content=self.text(), html="".join(self.blocks), tail=self.tail,
            reasoning="".join(self.reasoning), tools=self.steps,
        )

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
            error = "" if self.stop_requested else records.INTERRUPTED_ERROR
        except Exception:
            log.exception("turn failed reply=%s", self.reply_id)
            status, error = Message.Status.ERROR, INTERNAL_ERROR
        finally:
            flusher.cancel()
        await self._finish(status, error)
        if cancelled:
            raise asyncio.CancelledError

    async def _consume(self):
        """Ask the model; while it calls tools, run them and ask again, at most CHAT_TOOL_ROUNDS times.

        The last request past the limit still carries the tools (the history holds calls of them) with
        ``tool_choice: "none"``, so the model has to answer with what it has.
        """
        messages = list(self.messages)
        for round_number in itertools.count():
            may_call = self.tools is not None and round_number < settings.CHAT_TOOL_ROUNDS
            calls = await self._request(messages, "auto" if may_call else "none")
            if not calls:
                return
            if not may_call:
                return await self._refuse_calls(calls)
            messages += await self._run_tools(calls)

    async def _request(self, messages, tool_choice):
        """One request to the model, streamed to the watchers; returns the tool calls it asked for."""
        # Queue here, before any request, while the add-on's minute is spent by this or any other process:
        # a stop while queued cancels this wait and nothing is sent.
        budget = ratelimit.get_budget()
        estimate = ratelimit.estimate_tokens(messages, self.options["max_tokens"])
        reservation = await budget.acquire(estimate, on_wait=self._on_queued)

        async def reserve_retry():
            # The refused attempt counted as a request but used no tokens; the retry is a request of its own.
            nonlocal reservation
            await self._settle(budget, reservation, 0)
            reservation = await budget.acquire(estimate, on_wait=self._on_queued)

        calls, used = [], None
        stream = inference.stream_chat(
            messages, tools=self.tools, tool_choice=tool_choice if self.tools else None, on_retry=self._on_retry,
            before_retry=reserve_retry, **self.options,
        )
        # aclosing: a stop that lands while this task awaits a socket still closes the HTTP response now.
        async with aclosing(stream):
            async for event in stream:
                if isinstance(event, inference.TextDelta) and event.text:
                    await self._add_text(event.text)
                elif isinstance(event, inference.ReasoningDelta) and event.text:
                    await self._add_reasoning(event.text)
                elif isinstance(event, inference.ToolCall):
                    calls.append(event)
                elif isinstance(event, inference.Usage):
                    used = event
                elif isinstance(event, inference.Finish):
                    self.finish_reason = event.reason or ""
        if used is not None:
            self._add_usage(used)
            await self._settle(budget, reservation, used.prompt_tokens + used.completion_tokens)
        return calls

    def _add_usage(self, used):
        # A reply with tool rounds made several requests: it cost their sum.
        before = self.usage or {"prompt_tokens": 0, "completion_tokens": 0}
        self.usage = {
            "prompt_tokens": before["prompt_tokens"] + used.prompt_tokens,
            "completion_tokens": before["completion_tokens"] + used.completion_tokens,
        }

    # Tools ---------------------------------------------------------------------------------------

    async def _run_tools(self, calls):
        """Run the calls in order; returns the assistant message that made them and one ``tool`` message each."""
        await self._deliver()  # the text before the calls is shown before the steps
        round_text = self.text()[self._round_start :]
        made = {
            "role": "assistant",
            "content": round_text or None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}
                for call in calls
            ],
        }
        steps = [self._add_step(call) for call in calls]
        for step in steps:
            await self._send_step(step)
        results = []
        for call, step in zip(calls, steps):
            result = await tools.run(call.name, call.arguments, user=self.user)
            step.update(result=result.content, is_error=result.is_error, status="done")
            await self._send_step(step)
            results.append({"role": "tool", "tool_call_id": call.id, "content": result.content})
        self._new_round = self._new_thinking = True
        self._round_start = len(self.text())
        return [made, *results]

    def _add_step(self, call):
        step = {"id": call.id, "name": call.name, "arguments": call.arguments, "result": None, "is_error": False,
                "status": "running"}
        self.steps.append(step)
        return step

    async def _refuse_calls(self, calls):
        """Calls made past the round limit are shown, not run."""
        for call in calls:
            step = self._add_step(call)
            step.update(result=NOT_RUN, is_error=True, status="done")
            await self._send_step(step)

    async def _send_step(self, step):
        await self._broadcast(encode({"type": "tool", "id": self.reply_id, "step": dict(step)}))

    async def _settle(self, budget, reservation, used):
        """Replace the estimate with the reported usage; the reply matters more than the bookkeeping."""
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
        if self._new_round:
            self._new_round = False
            if self.text() or self.pending:
                text = "\n\n" + text  # the answer resumes after tool steps: a new paragraph
        self.pending.append(text)
        await self._received()

    async def _add_reasoning(self, text):
        if self._new_thinking:
            self._new_thinking = False
            if self.reasoning or self.pending_reasoning:
                text = "\n\n" + text
        self.pending_reasoning.append(text)
        await self._received()

    async def _received(self):
        if self.first_token_at is None:
            self.first_token_at = timezone.now()
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
        """Send what arrived since the last frame: its text and thinking, newly finished blocks and the
        re-rendered tail."""
        async with self._lock:
            text, thinking = "".join(self.pending), "".join(self.pending_reasoning)
            self.pending.clear()
            self.pending_reasoning.clear()
            if text:
                self.parts.append(text)
                self.renderer.feed(text)
            if thinking:
                self.reasoning.append(thinking)
            update = self.renderer.flush()
            if update is None and self.renderer.dirty and self._timer is None:
                # The renderer is throttled: render the tail once more even if the model pauses here.
                self._timer = asyncio.get_running_loop().call_later(settings.CHAT_RENDER_INTERVAL, self._on_timer)
            if not text and not thinking and update is None:
                return
            self.seq += 1
            self._last_sent = asyncio.get_running_loop().time()
            frame = {"type": "delta", "id": self.reply_id, "seq": self.seq, "text": text}
            if thinking:
                frame["reasoning"] = thinking
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
        saved, saved_at = None, time.monotonic()
        while True:
            await asyncio.sleep(settings.CHAT_FLUSH_INTERVAL)
            progress = self._progress()
            if progress == saved and time.monotonic() - saved_at < HEARTBEAT_EVERY:
                continue
            try:
                await database_sync_to_async(records.flush_partial)(self.reply.pk, *self._saved_fields())
            except Exception:
                log.warning("flush failed reply=%s; retrying at the next tick", self.reply_id, exc_info=True)
                continue
            saved, saved_at = progress, time.monotonic()

    def _progress(self):
        """Changes whenever there is something new to save."""
        return len(self.parts), len(self.reasoning), [step["status"] for step in self.steps]

    def _saved_fields(self):
        return self.text(), "".join(self.reasoning), [dict(step) for step in self.steps]

    async def _finish(self, status, error):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._deliver()
        self.blocks.extend(self.renderer.finish().committed)
        for step in self.steps:
            if step["status"] == "running":  # stopped or cut off while the tool ran
                step.update(result=STOPPED_TOOL, is_error=True, status="done")
        reply, totals = await self._save_outcome(status, error)
        self.hub.unregister_turn(self.key, self)
        # The finished blocks equal a one-shot render of the whole text (tests/test_rendering.py).
        message = reply.as_frame(seq=self.seq, html="".join(self.blocks), branch=self.reply.branch)
        frame = encode({"type": "message", "message": message, "usage_totals": totals})
        await self.hub.send_local(self.key, frame)
        self.remote_frames.append(frame)
        await self._relay_pending()
        self._log(reply)
        if len(self.reply.history_ids) == 1:  # a reply to the conversation's first message may get a title
            titles.schedule(reply.conversation, reply)

    async def _save_outcome(self, status, error):
        """Record the outcome once; a database hiccup gets retried rather than losing the reply."""
        for attempt in range(4):
            try:
                text, reasoning, steps = self._saved_fields()
                return await database_sync_to_async(_finish_records)(
                    self.reply.pk,
                    content=text,
                    model=self.reply.model,
                    reasoning=reasoning,
                    tool_calls=steps,
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


def _finish_records(reply_pk, **outcome):
    """Save the outcome and read the conversation's new token totals, in one trip to the database thread."""
    reply = records.finish_reply(reply_pk, **outcome)
    return reply, records.usage_totals(reply.conversation)
