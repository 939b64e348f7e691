"""The inference client decodes Heroku's server-sent events from hand-made byte chunks, and sends the request."""

import json

import pytest

from chat.inference import Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from tests.fake_api import DONE, HELLO, chunk, collect, sse

pytestmark = pytest.mark.usefixtures("fresh_clients")


async def test_a_line_split_across_reads(canned):
    whole = chunk({"content": "Hello, world"})
    canned.add([whole[:17], whole[17:40], whole[40:], chunk(finish_reason="stop"), DONE])
    assert await collect() == [TextDelta("Hello, world"), Finish("stop")]


async def test_a_utf8_character_split_across_reads(canned):
    whole = chunk({"content": "café ☕"})
    cup = whole.index("☕".encode())
    canned.add([whole[: cup + 1], whole[cup + 1 : cup + 2], whole[cup + 2 :], chunk(finish_reason="stop"), DONE])
    assert await collect() == [TextDelta("café ☕"), Finish("stop")]


async def test_data_without_a_space_and_crlf_lines(canned):
    body = chunk({"content": "tight"}).replace(b"data: ", b"data:").replace(b"\n", b"\r\n")
    canned.add([b": keep-alive comment\n\n", body, chunk(finish_reason="stop"), b"data:[DONE]\n\n"])
    assert await collect() == [TextDelta("tight"), Finish("stop")]


async def test_usage_is_taken_from_whichever_chunk_carries_it(canned):
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    trailer = sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage})
    canned.add([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}), chunk(finish_reason="stop"),
                trailer, DONE])
    assert await collect() == [TextDelta("Hi"), Usage(12, 3, 15), Finish("stop")]


async def test_reasoning_deltas_come_before_the_text(canned):
    canned.add([chunk({"reasoning": {"thinking": "Think"}}), chunk({"reasoning": {"thinking": "ing."}}),
                chunk({"content": "Answer"}), chunk(finish_reason="stop"), DONE])
    assert await collect() == [ReasoningDelta("Think"), ReasoningDelta("ing."), TextDelta("Answer"), Finish("stop")]


async def test_parallel_tool_call_fragments_are_accumulated_by_index(canned):
    def fragment(index, arguments, **first):
        call = {"index": index, "function": {"arguments": arguments}}
        if first:
            call.update(id=first["id"], type="function")
            call["function"]["name"] = first["name"]
        return chunk({"tool_calls": [call]})

    usage = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}
    canned.add([
        chunk({"content": "Checking both."}),
        fragment(0, "", id="toolu_a", name="get_weather"),
        fragment(1, '{"ci', id="toolu_b", name="get_time"),
        fragment(0, '{"city": '),
        fragment(1, 'ty": "Oslo"}'),
        fragment(0, '"Paris"}'),
        chunk(finish_reason="tool_calls", usage=usage),
        DONE,
    ])
    assert await collect() == [
        TextDelta("Checking both."),
        ToolCall(0, "toolu_a", "get_weather", '{"city": "Paris"}'),
        ToolCall(1, "toolu_b", "get_time", '{"city": "Oslo"}'),
        Usage(30, 20, 50),
        Finish("tool_calls"),
    ]


async def test_a_whole_tool_call_in_one_chunk(canned):
    call = {"index": 0, "id": "toolu_x", "type": "function", "function": {"name": "roll", "arguments": "{}"}}
    canned.add([chunk({"tool_calls": [call]}, finish_reason="tool_calls"), DONE])
    assert await collect() == [ToolCall(0, "toolu_x", "roll", "{}"), Finish("tool_calls")]


async def test_the_request_sent(canned):
    canned.add([chunk(finish_reason="stop"), DONE])
    tools = [{"type": "function", "function": {"name": "roll", "parameters": {"type": "object"}}}]
    await collect(tools=tools, prompt_caching=False, extended_thinking={"enabled": True, "budget_tokens": 1024})
    request = canned.requests[0]
    assert str(request.url) == "http://inference.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer inf-test-key"
    assert request.headers["x-heroku-prompt-caching"] == "false"
    assert json.loads(request.content) == {
        "model": "claude-4-5-sonnet", "messages": HELLO, "stream": True, "max_tokens": 4096,
        "tools": tools, "tool_choice": "auto", "extended_thinking": {"enabled": True, "budget_tokens": 1024},
    }


async def test_only_given_options_are_sent(canned):
    canned.add([chunk(finish_reason="stop"), DONE])
    await collect(model="claude-4-5-haiku", max_tokens=100, temperature=0.2)
    assert "x-heroku-prompt-caching" not in canned.requests[0].headers
    assert json.loads(canned.requests[0].content) == {
        "model": "claude-4-5-haiku", "messages": HELLO, "stream": True, "max_tokens": 100, "temperature": 0.2,
    }
