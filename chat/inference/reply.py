"""One streamed reply, chunk by chunk: Heroku's ``chat.completion.chunk`` payloads become typed events.

Tool-call fragments are gathered by index and passed on whole at the end, with the latest usage and one Finish.
Anything not shaped like a chunk is a broken reply (``Unavailable``); an ``error`` chunk is the API's error.
"""

import json

from chat.inference import errors
from chat.inference.errors import CUT_OFF, UNREADABLE, Unavailable
from chat.inference.events import Event, Finish, ReasoningDelta, TextDelta, ToolCall, Usage


def feed(reply: "ReplyState", data: str) -> list[Event]:
    """The events of one SSE data field; anything not shaped like a chunk is a broken reply."""
    try:
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise TypeError("event is not a JSON object")
        return reply.feed(chunk)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise Unavailable(f"malformed event {data[:200]!r}: {exc}", user_message=UNREADABLE) from exc


class ReplyState:
    """Accumulates one streamed reply: tool-call fragments by index, the latest usage, the finish reason."""

    def __init__(self, model: str):
        self.model = model
        self.tool_calls: dict[int, dict] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def feed(self, chunk: dict) -> list[Event]:
        if chunk.get("error") is not None:
            raise errors.from_payload(chunk["error"], None, {}, self.model, in_stream=True)
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        events = []
        for choice in chunk.get("choices") or []:
            events.extend(self._feed_delta(choice.get("delta") or {}))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _feed_delta(self, delta: dict) -> list[Event]:
        events = []
        reasoning = delta.get("reasoning")
        thinking = reasoning.get("thinking") if isinstance(reasoning, dict) else reasoning
        if isinstance(thinking, str) and thinking:
            events.append(ReasoningDelta(thinking))
        if isinstance(delta.get("content"), str) and delta["content"]:
            events.append(TextDelta(delta["content"]))
        for position, fragment in enumerate(delta.get("tool_calls") or []):
            self._feed_tool_fragment(position, fragment)
        return events

    def _feed_tool_fragment(self, position: int, fragment: dict) -> None:
        index = fragment.get("index", position)
        call = self.tool_calls.setdefault(index, {"id": "", "name": "", "arguments": []})
        function = fragment.get("function") or {}
        call["id"] = call["id"] or fragment.get("id") or ""
        call["name"] = call["name"] or function.get("name") or ""
        if function.get("arguments"):
            call["arguments"].append(function["arguments"])

    def finish(self, done: bool) -> list[Event]:
        """The closing events; raises ``Unavailable`` for a reply cut off or with a nameless tool call."""
        if not done and self.finish_reason is None:
            raise Unavailable("stream ended without [DONE] or finish_reason", user_message=CUT_OFF)
        events: list[Event] = []
        for index in sorted(self.tool_calls):
            call = self.tool_calls[index]
            if not call["name"]:
                raise Unavailable(f"tool call {index} has no name", user_message=UNREADABLE)
            arguments = "".join(call["arguments"])
            events.append(ToolCall(index, call["id"] or f"call_{index}", call["name"], arguments))
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(self.finish_reason))
        return events


def _usage(raw: dict) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(prompt, completion, int(raw.get("total_tokens") or prompt + completion))
