"""The requests of one reply: ask the model, run the tools it calls, ask again, within CHAT_TOOL_ROUNDS."""

import itertools
import math
from contextlib import aclosing

from django.conf import settings

from chat import inference
from chat.live.frames import encode
from chat.turns import tools
from chat.turns.budget import Reservation

NOT_RUN = "Not run: this reply reached its limit of tool rounds."


class ToolLoop:
    """Streams the model's answer to ``messages`` into ``stream`` (chat/turns/stream.py), running tools for
    ``user`` (the conversation's owner: tools act for them); ``send`` broadcasts an encoded status frame."""

    def __init__(self, stream, send, *, messages, tools_list, request_options, user):
        self.stream, self._send = stream, send
        self.messages = messages
        self.tools = tools_list  # sent in one fixed order on every request: the list is part of the cached prefix
        self.options = request_options
        self.user = user
        self.usage = None
        self.finish_reason = ""
        self._round_start = 0

    async def run(self):
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
        reservation = Reservation(self.stream.reply_id, messages, self.options["max_tokens"], self._on_queued)
        await reservation.acquire()
        calls, used = [], None
        stream = inference.stream_chat(
            messages, tools=self.tools, tool_choice=tool_choice if self.tools else None, on_retry=self._on_retry,
            before_retry=reservation.retry, **self.options,
        )
        # aclosing: a stop that lands while this task awaits a socket still closes the HTTP response now.
        async with aclosing(stream):
            async for event in stream:
                if isinstance(event, inference.TextDelta) and event.text:
                    await self.stream.add_text(event.text)
                elif isinstance(event, inference.ReasoningDelta) and event.text:
                    await self.stream.add_reasoning(event.text)
                elif isinstance(event, inference.ToolCall):
                    calls.append(event)
                elif isinstance(event, inference.Usage):
                    used = event
                elif isinstance(event, inference.Finish):
                    self.finish_reason = event.reason or ""
        if used is not None:
            self._add_usage(used)
            await reservation.settle(used.prompt_tokens + used.completion_tokens)
        return calls

    def _add_usage(self, used):
        # A reply with tool rounds made several requests: it cost their sum.
        before = self.usage or {"prompt_tokens": 0, "completion_tokens": 0}
        self.usage = {
            "prompt_tokens": before["prompt_tokens"] + used.prompt_tokens,
            "completion_tokens": before["completion_tokens"] + used.completion_tokens,
        }

    async def _run_tools(self, calls):
        """Run the calls in order; returns the assistant message that made them and one ``tool`` message each."""
        await self.stream.deliver()  # the text before the calls is shown before the steps
        round_text = self.stream.text()[self._round_start :]
        made = {
            "role": "assistant",
            "content": round_text or None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}
                for call in calls
            ],
        }
        steps = [self.stream.add_step(call) for call in calls]
        for step in steps:
            await self.stream.send_step(step)
        results = []
        for call, step in zip(calls, steps):
            result = await tools.run(call.name, call.arguments, user=self.user)
            step.update(result=result.content, is_error=result.is_error, status="done")
            await self.stream.send_step(step)
            results.append({"role": "tool", "tool_call_id": call.id, "content": result.content})
        self.stream.new_round()
        self._round_start = len(self.stream.text())
        return [made, *results]

    async def _refuse_calls(self, calls):
        """Calls made past the round limit are shown, not run."""
        for call in calls:
            step = self.stream.add_step(call)
            step.update(result=NOT_RUN, is_error=True, status="done")
            await self.stream.send_step(step)

    async def _on_queued(self, seconds):
        detail = f"Queued: the model's rate limit is reached; starting in about {max(1, math.ceil(seconds))} s."
        await self._status(detail)

    async def _on_retry(self, attempt, max_attempts, delay, error):
        await self._status(f"{error.user_message} Retrying in {delay:.0f} s ({attempt}/{max_attempts}).")

    async def _status(self, detail):
        await self._send(encode({"type": "status", "id": self.stream.reply_id, "detail": detail}))
