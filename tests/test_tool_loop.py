"""The tool loop over real HTTP to the stand-in: calls with fragmented arguments, tool errors, the round
limit, the payload order (assistant ``tool_calls``, then ``tool`` results with matching ids), storage."""

import json
import uuid

import pytest
from channels.db import database_sync_to_async

from chat.standin.api import Reply
from chat.turns import tools
from chat.turns.tool_loop import NOT_RUN
from tests.sockets import ask, frames_until, is_final, send_frame, stored

pytestmark = pytest.mark.django_db(transaction=True)


def tool_frames(frames):
    return [frame["step"] for frame in frames if frame["type"] == "tool"]


async def test_a_tool_call_is_run_and_its_result_goes_back_to_the_model(socket, conversation, api):
    # chunk_size 3 splits the call's JSON arguments over many chunks, as real streams do.
    api.enqueue(Reply(text="Let me compute.", tool_calls=[("calculator", {"expression": "2 + 3 * 4"})], chunk_size=3,
                      usage={"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}))
    api.enqueue(Reply(text="It is 14.", usage={"prompt_tokens": 200, "completion_tokens": 20, "total_tokens": 220}))

    frames = await ask(socket, "What is 2 + 3 * 4?")

    steps = tool_frames(frames)
    assert [step["status"] for step in steps] == ["running", "done"]
    assert steps[0]["name"] == "calculator" and steps[0]["result"] is None
    assert steps[1]["result"] == "14" and steps[1]["is_error"] is False
    assert json.loads(steps[1]["arguments"]) == {"expression": "2 + 3 * 4"}
    final = frames[-1]["message"]
    assert final["status"] == "complete" and final["content"] == "Let me compute.\n\nIt is 14."
    assert [step["result"] for step in final["tools"]] == ["14"]

    first, second = [entry["body"] for entry in list(api.requests)[-2:]]
    assert first["tools"] == second["tools"] == tools.definitions()
    assert first["tool_choice"] == second["tool_choice"] == "auto"
    made, result = second["messages"][-2:]
    assert made["role"] == "assistant" and made["content"] == "Let me compute."
    (call,) = made["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "calculator"
    assert json.loads(call["function"]["arguments"]) == {"expression": "2 + 3 * 4"}
    assert result == {"role": "tool", "tool_call_id": call["id"], "content": "14"}
    assert second["messages"][:-2] == first["messages"]

    _, reply = await stored(conversation)
    assert reply.content == "Let me compute.\n\nIt is 14."
    assert [(step["name"], step["result"], step["is_error"]) for step in reply.tool_calls] == [
        ("calculator", "14", False)
    ]
    # Both requests were paid for.
    assert (reply.prompt_tokens, reply.completion_tokens) == (300, 30)


async def test_several_calls_in_one_round_answer_in_order(socket, conversation, api):
    api.enqueue(Reply(tool_calls=[("calculator", {"expression": "6 * 7"}), ("current_time", {"timezone": "UTC"})]))
    api.enqueue(Reply(text="Done."))

    frames = await ask(socket, "Two things")

    final = frames[-1]["message"]
    assert [step["name"] for step in final["tools"]] == ["calculator", "current_time"]
    made, *results = api.requests[-1]["body"]["messages"][-3:]
    assert made["content"] is None  # no text before the calls: null, never an empty text block
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in made["tool_calls"]]
    assert results[0]["content"] == "42" and "UTC" in results[1]["content"]
    assert final["content"] == "Done."


@pytest.mark.parametrize(
    "call, error",
    [
        (("calculator", {"expression": "1 / 0"}), "calculator failed: division by zero"),
        (("calculator", '{"expression": '), "The arguments are not valid JSON."),
        (("no_such_tool", {}), "Unknown tool 'no_such_tool'"),
    ],
)
async def test_a_failing_tool_is_reported_to_the_model_and_the_user(socket, conversation, api, call, error):
    api.enqueue(Reply(tool_calls=[call]))
    api.enqueue(Reply(text="That did not work."))

    frames = await ask(socket, "Try it")

    done = tool_frames(frames)[-1]
    assert done["is_error"] is True and done["result"].startswith(error)
    assert api.requests[-1]["body"]["messages"][-1]["content"] == done["result"]
    final = frames[-1]["message"]
    assert final["status"] == "complete" and final["content"] == "That did not work."
    _, reply = await stored(conversation)
    assert reply.tool_calls[0]["is_error"] is True


async def test_the_loop_stops_at_the_round_limit(socket, conversation, api, settings):
    settings.CHAT_TOOL_ROUNDS = 2
    for _ in range(3):
        api.enqueue(Reply(tool_calls=[("calculator", {"expression": "1 + 1"})]))

    frames = await ask(socket, "Loop forever")

    bodies = [entry["body"] for entry in list(api.requests)[-3:]]
    assert [body["tool_choice"] for body in bodies] == ["auto", "auto", "none"]
    assert all(body["tools"] == tools.definitions() for body in bodies)  # the history holds calls of them
    final = frames[-1]["message"]
    assert final["status"] == "complete"
    assert [step["result"] for step in final["tools"]] == ["2", "2", NOT_RUN]
    assert final["tools"][-1]["is_error"] is True


async def test_tools_can_be_turned_off_for_a_conversation(socket, conversation, api):
    conversation.tools_enabled = False
    await database_sync_to_async(conversation.save)()
    api.enqueue(Reply(text="No tools here."))

    await ask(socket, "Hello")

    body = api.requests[-1]["body"]
    assert "tools" not in body and "tool_choice" not in body


async def test_the_demo_model_calls_a_named_tool_and_quotes_its_result(socket, conversation, api):
    frames = await ask(socket, "Use the calculator please")

    final = frames[-1]["message"]
    assert [(step["name"], step["result"], step["is_error"]) for step in final["tools"]] == [
        ("calculator", "80", False)  # the schema's example, (2 + 3) * 4 ** 2
    ]
    assert "calculator" in final["content"] and "80" in final["content"]


async def test_a_stop_while_a_tool_runs_keeps_the_step_as_stopped(socket, conversation, api, monkeypatch):
    import asyncio

    from chat.turns import stream

    started = asyncio.Event()

    async def slow_run(name, arguments, *, user):
        started.set()
        await asyncio.sleep(30)

    monkeypatch.setattr(tools, "run", slow_run)
    api.enqueue(Reply(text="Working.", tool_calls=[("calculator", {"expression": "1"})]))
    await socket.send_json_to(send_frame("Slow tool", uuid.uuid4()))
    await asyncio.wait_for(started.wait(), 5)
    await socket.send_json_to({"type": "stop"})
    frames = await frames_until(socket, is_final)

    final = frames[-1]["message"]
    assert final["status"] == "stopped" and final["content"] == "Working."
    assert final["tools"][0]["result"] == stream.STOPPED_TOOL and final["tools"][0]["is_error"] is True
    _, reply = await stored(conversation)
    assert reply.status == "stopped" and reply.tool_calls[0]["result"] == stream.STOPPED_TOOL
