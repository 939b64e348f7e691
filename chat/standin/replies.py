"""The stand-in's replies: a scripted ``Reply`` or the demo model's answer, fitted to one request and turned into
stream chunks or a whole completion, with token counts for usage and rate limits.
"""

import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field

from chat.standin import demo_model
from chat.standin.validation import decode_data_url, image_info, requested_max_tokens
from chat.turns.title_prompt import TITLE_PROMPT


@dataclass
class Reply:
    """A scripted reply. ``tool_calls`` holds ``(name, arguments)`` pairs; ``chunk_size`` is characters per text
    delta (None: word-sized deltas); ``finish_reason`` and ``usage`` default to what the reply implies."""

    text: str = ""
    reasoning: str | None = None
    tool_calls: list = field(default_factory=list)
    chunk_size: int | None = None
    finish_reason: str | None = None
    usage: dict | None = None


@dataclass(frozen=True)
class _Resolved:
    """A reply fitted to one request: reasoning only when asked for, text cut at max_tokens, ids, usage."""

    text: str
    reasoning: str
    calls: list  # (id, name, arguments as JSON text)
    chunk_size: int | None
    finish_reason: str
    usage: dict


def resolve(body, reply: Reply) -> _Resolved:
    thinking = body.get("extended_thinking") or {}
    wants_reasoning = bool(thinking.get("enabled")) and thinking.get("include_reasoning") is not False
    reasoning = (reply.reasoning or "Let me think about how to answer this.") if wants_reasoning else ""
    text, finish = reply.text, reply.finish_reason
    limit = requested_max_tokens(body) * 4
    if finish is None and len(text) > limit:
        text, finish = text[:limit], "length"
    calls = [
        (f"toolu_{uuid.uuid4().hex[:24]}", name, args if isinstance(args, str) else json.dumps(args))
        for name, args in reply.tool_calls
    ]
    prompt = request_tokens(body)
    completion = _tokens(text + reasoning + "".join(arguments for _, _, arguments in calls))
    usage = reply.usage or {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}
    return _Resolved(text, reasoning, calls, reply.chunk_size, finish or ("tool_calls" if calls else "stop"), usage)


def stream_chunks(body, reply: _Resolved) -> list[dict]:
    """Every chunk of the stream: role first, reasoning, text, fragmented tool calls, then finish with usage."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body["model"]}
    deltas = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning": {"thinking": piece}} for piece in _pieces(reply.reasoning, reply.chunk_size)]
    deltas += [{"content": piece} for piece in _pieces(reply.text, reply.chunk_size)]
    for index, (call_id, name, arguments) in enumerate(reply.calls):
        function = {"name": name, "arguments": ""}
        deltas.append({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]})
        deltas += [{"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                   for piece in _pieces(arguments, max(1, math.ceil(len(arguments) / 3)))]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    last = {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}
    return chunks + [{**base, "choices": [last], "usage": reply.usage}]


def completion(body, reply: _Resolved) -> dict:
    message = {"role": "assistant", "content": reply.text if reply.text or not reply.calls else None, "refusal": None}
    if reply.calls:
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                                 for call_id, name, args in reply.calls]
    if reply.reasoning:
        message["reasoning"] = {"thinking": reply.reasoning}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fake-heroku-inference",
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
            "usage": reply.usage}


def _pieces(text: str, size: int | None) -> list[str]:
    """Deltas of ``size`` characters, or word-sized ones (each word with the spaces after it)."""
    if not text:
        return []
    if size:
        return [text[start:start + size] for start in range(0, len(text), size)]
    return re.findall(r"\S+\s*|\s+", text)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def request_tokens(body) -> int:
    """A rough prompt size: four characters a token, a flat 1,000 per image."""
    if not isinstance(body, dict):
        return 1
    text, images = json.dumps(body.get("tools") or []), 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        text += _text_of(content)
        images += len(_image_urls(content))
    return _tokens(text) + 1000 * images


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _image_urls(content) -> list[str]:
    parts = content if isinstance(content, list) else []
    urls = [p.get("image_url") for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    return [url.get("url", "") if isinstance(url, dict) else str(url) for url in urls]


# --- the demo model's answers (its words are in chat/standin/demo_model.py) ------------------------------------------


def demo_reply(body: dict) -> Reply:
    """The demo model's answer to a valid request: a title for the app's title request, a labelled echo, one
    call of a tool the user named, or a quote of a tool result."""
    messages = body["messages"]
    last = messages[-1]
    if messages[0]["role"] == "system" and messages[0].get("content") == TITLE_PROMPT:
        return Reply(text=demo_model.title(_text_of(last.get("content"))))
    if last["role"] == "tool":
        return Reply(text=_tool_result_text(messages, last))
    tool = _named_tool(body, last)
    if tool is not None:
        name = tool["function"]["name"]
        return Reply(text=f"I'll use the `{name}` tool.", tool_calls=[(name, _placeholder_arguments(tool))])
    user = next((message for message in reversed(messages) if message["role"] == "user"), last)
    question = _text_of(user.get("content")).strip()
    return Reply(text=demo_model.greeting(question, _describe_images(user)), reasoning=demo_model.reasoning(question))


def _describe_images(message: dict) -> str:
    described = []
    for url in _image_urls(message.get("content")):
        data = decode_data_url(url)
        info = image_info(data) if data else None
        described.append(f"a {info[0]} image of {info[1]}×{info[2]} pixels" if info else "an unreadable image")
    if not described:
        return "You attached no images."
    listed = ", ".join(described[:-1]) + " and " + described[-1] if len(described) > 1 else described[0]
    return f"You attached {len(described)} image{'s' if len(described) > 1 else ''}: {listed}."


def _named_tool(body: dict, last: dict) -> dict | None:
    if last["role"] != "user" or body.get("tool_choice") == "none":
        return None
    text = _text_of(last.get("content"))
    for tool in body.get("tools") or []:
        name = tool["function"]["name"]
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.I):
            return tool
    return None


def _placeholder_arguments(tool: dict) -> dict:
    """Arguments for the required parameters: the schema's default, first enum value or example, else by type."""
    schema = tool["function"].get("parameters") or {}
    properties = schema.get("properties") or {}
    by_type = {"string": "example", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    arguments = {}
    for name in schema.get("required") or []:
        spec = properties.get(name) or {}
        if "default" in spec:
            arguments[name] = spec["default"]
        elif spec.get("enum") or spec.get("examples"):
            arguments[name] = (spec.get("enum") or spec.get("examples"))[0]
        else:
            arguments[name] = by_type.get(spec.get("type"), "example")
    return arguments


def _tool_result_text(messages: list, result: dict) -> str:
    calls = [call for message in messages if message["role"] == "assistant"
             for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    call = next((call for call in calls if call.get("id") == result.get("tool_call_id")), {})
    name = (call.get("function") or {}).get("name", "tool")
    return demo_model.tool_result(name, _text_of(result.get("content")).strip())
