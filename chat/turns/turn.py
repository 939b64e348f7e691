"""One reply being written: the parts of a turn, each with one job, and the order they run in.

``ReplyStream`` holds what is written and delivers it (coalescing, seq, rendering); ``ToolLoop`` makes the
requests and runs tools; ``Relay`` batches frames for other processes; ``Saver`` writes partial text and the
outcome. A Turn is an asyncio task owned by the process (registered with the hub), never by a socket: closing
or reloading a tab changes who watches the reply, not whether it is written.
"""

import asyncio
import logging
import time

from django.contrib.auth import get_user_model

from chat import inference
from chat.live import frames
from chat.logs import describe
from chat.models import Message
from chat.turns import options, records, titles, tools
from chat.turns.relay import Relay
from chat.turns.saving import Saver
from chat.turns.stream import ReplyStream
from chat.turns.tool_loop import ToolLoop

log = logging.getLogger("chat.turn")

INTERNAL_ERROR = "Something went wrong on our side while writing this reply. Please try again."


class Turn:
    """Writes ``reply`` of ``conversation`` from the prompt ``messages``, shown at ``branch`` among its
    versions. ``first_exchange``: the reply answers the conversation's first message (it may get a title).
    Implements the hub's ``RunningTurn``."""

    def __init__(self, hub, conversation, reply, *, messages, branch, first_exchange):
        self.hub = hub
        self.key = conversation.public_id.hex
        self.reply, self.reply_id = reply, str(reply.public_id)
        self.branch, self.first_exchange = branch, first_exchange
        request_options = options.request_options(conversation)
        self.reply.model = request_options["model"]
        self.task = None
        self.stop_requested = False
        self._background = set()
        self._started = time.monotonic()
        self.stream = ReplyStream(self.reply_id, self.broadcast, self.spawn)
        self.relay = Relay(hub, self.key, self.spawn)
        self.saver = Saver(reply.pk, self.reply_id, self.stream)
        self.requests = ToolLoop(
            self.stream, self.broadcast, messages=messages, request_options=request_options,
            tools_list=tools.definitions() if conversation.tools_enabled else None,
            user=get_user_model()(pk=conversation.owner_id),  # tools read only the owner's conversations
        )

    def start(self):
        self.hub.register(self)
        self.task = asyncio.create_task(self.run(), name=f"turn-{self.reply_id}")

    def stop(self):
        """Stop writing; the text so far is kept and the reply is marked stopped."""
        if self.task is not None and not self.task.done():
            self.stop_requested = True
            self.task.cancel()

    def snapshot(self):
        stream = self.stream
        return frames.message_frame(
            self.reply, attachments=(), branch=self.branch, seq=stream.seq, content=stream.text(),
            html="".join(stream.blocks), tail=stream.tail, reasoning=stream.thinking(), tools=stream.steps,
        )

    async def add_remote(self, channel):
        await self.relay.add(channel, self.snapshot())

    def remote_count(self):
        return len(self.relay.channels)

    async def broadcast(self, frame):
        """Send an encoded frame to this process's watchers now and to other processes' in the next batch."""
        await self.hub.send_local(self.key, frame)
        self.relay.push(frame)

    def spawn(self, coro):
        """Run ``coro`` in the background, kept referenced until it ends."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run(self):
        flusher = asyncio.create_task(self.saver.flush_forever())
        status, error, cancelled = Message.Status.COMPLETE, "", False
        try:
            await self.requests.run()
        except inference.InferenceError as exc:
            status, error = Message.Status.ERROR, exc.user_message
        except asyncio.CancelledError:
            cancelled = not self.stop_requested
            status = Message.Status.STOPPED if self.stop_requested else Message.Status.INTERRUPTED
            error = "" if self.stop_requested else records.INTERRUPTED_ERROR
        except Exception as exc:
            log.error("turn failed reply=%s %s", self.reply_id, describe(exc))
            status, error = Message.Status.ERROR, INTERNAL_ERROR
        finally:
            flusher.cancel()
        await self._finish(status, error)
        if cancelled:
            raise asyncio.CancelledError

    async def _finish(self, status, error):
        await self.stream.finish()
        reply, totals = await self.saver.save_outcome(
            model=self.reply.model, status=status, error=error, finish_reason=self.requests.finish_reason,
            usage=self.requests.usage,
        )
        self.hub.unregister(self)
        message = frames.message_data(reply, seq=self.stream.seq, html="".join(self.stream.blocks), branch=self.branch)
        frame = frames.encode({"type": "message", "message": message, "usage_totals": totals})
        await self.hub.send_local(self.key, frame)
        await self.relay.close(frame)
        self._log(reply)
        if self.first_exchange:
            titles.schedule(reply.conversation, reply)

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
            self.stream.seq,
            reply.finish_reason or "-",
        )
