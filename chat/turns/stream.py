"""What a reply has written so far, and its delivery to watchers: coalescing, seq numbers, rendered Markdown.

The first delta goes out at once; later ones coalesce to one frame per CHAT_DELTA_INTERVAL. Markdown is rendered
as the text grows: finished blocks once, only the open tail again (chat/rendering/markdown.py).
"""

import asyncio

from django.conf import settings
from django.utils import timezone

from chat.live.frames import encode
from chat.rendering.stream import StreamRenderer

STOPPED_TOOL = "Stopped before the tool finished."


class ReplyStream:
    """The text, thinking and tool steps of one reply, sent through ``send`` (an async callable taking an
    encoded frame) as ``delta`` and ``tool`` frames of the reply ``reply_id``."""

    def __init__(self, reply_id, send, spawn):
        self.reply_id = reply_id
        self._send = send
        self._spawn = spawn  # runs a coroutine in the background, owned by the turn
        self.parts = []  # text delivered to watchers, in order
        self.reasoning = []  # thinking delivered to watchers, in order
        self.steps = []  # tool steps: {"id", "name", "arguments", "result", "is_error", "status"}
        self.renderer = StreamRenderer(min_interval=settings.CHAT_RENDER_INTERVAL)
        self.blocks = []  # rendered HTML of the finished blocks, in order
        self.tail = ""
        self.seq = 0
        self.first_token_at = None
        self._pending = []  # text received from the model, not yet delivered
        self._pending_reasoning = []
        # The next text or thinking starts a new paragraph: the model resumed after tool calls.
        self._new_round = self._new_thinking = False
        self._lock = asyncio.Lock()
        self._last_sent = 0.0
        self._timer = None

    def text(self):
        return "".join(self.parts)

    def thinking(self):
        return "".join(self.reasoning)

    def new_round(self):
        """The model answers again after tool calls: its next text and thinking start new paragraphs."""
        self._new_round = self._new_thinking = True

    def progress(self):
        """Changes whenever there is something new to save."""
        return len(self.parts), len(self.reasoning), [step["status"] for step in self.steps]

    def saved_fields(self):
        return self.text(), self.thinking(), [dict(step) for step in self.steps]

    # Text and thinking --------------------------------------------------------------------------

    async def add_text(self, text):
        if self._new_round:
            self._new_round = False
            if self.parts or self._pending:
                text = "\n\n" + text  # the answer resumes after tool steps: a new paragraph
        self._pending.append(text)
        await self._received()

    async def add_reasoning(self, text):
        if self._new_thinking:
            self._new_thinking = False
            if self.reasoning or self._pending_reasoning:
                text = "\n\n" + text
        self._pending_reasoning.append(text)
        await self._received()

    async def _received(self):
        if self.first_token_at is None:
            self.first_token_at = timezone.now()
        loop = asyncio.get_running_loop()
        wait = self._last_sent + settings.CHAT_DELTA_INTERVAL - loop.time()
        if wait <= 0:
            await self.deliver()
        elif self._timer is None:
            self._timer = loop.call_later(wait, self._on_timer)

    def _on_timer(self):
        self._timer = None
        self._spawn(self.deliver())

    async def deliver(self):
        """Send what arrived since the last frame: its text and thinking, newly finished blocks and the
        re-rendered tail."""
        async with self._lock:
            text, thinking = "".join(self._pending), "".join(self._pending_reasoning)
            self._pending.clear()
            self._pending_reasoning.clear()
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
            await self._send(encode(frame))

    async def finish(self):
        """Deliver what is pending and close the render; steps cut off while their tool ran end as errors."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.deliver()
        # The finished blocks equal a one-shot render of the whole text (tests/test_rendering.py).
        self.blocks.extend(self.renderer.finish().committed)
        for step in self.steps:
            if step["status"] == "running":  # stopped or cut off while the tool ran
                step.update(result=STOPPED_TOOL, is_error=True, status="done")

    # Tool steps ----------------------------------------------------------------------------------

    def add_step(self, call):
        step = {"id": call.id, "name": call.name, "arguments": call.arguments, "result": None, "is_error": False,
                "status": "running"}
        self.steps.append(step)
        return step

    async def send_step(self, step):
        await self._send(encode({"type": "tool", "id": self.reply_id, "step": dict(step)}))
