"""The stand-in API over real HTTP, with the official openai SDK as the client: it must look like Heroku."""

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from chat.standin.api import FakeInference, Fault, Reply, serve_in_thread
from tests.openai_sdk import ASK, MODEL, WEATHER_TOOL, image_part, image_url
from tests.servers import free_port

# --- streaming -----------------------------------------------------------------------------------------------


def test_streamed_text(sdk, stand_in):
    stand_in.fake.enqueue(Reply(text="Paris, on the Seine.", chunk_size=6))
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=ASK, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == ["Paris,", " on th", "e Sein", "e."]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert stand_in.fake.requests[0]["body"]["stream"] is True


def test_streamed_tool_call_with_fragmented_arguments(sdk, stand_in):
    stand_in.fake.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris", "unit": "celsius"})]))
    stream = sdk.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER_TOOL], tool_choice="auto",
                                         stream=True)
    fragments = [call for c in stream if c.choices and c.choices[0].delta.tool_calls
                 for call in c.choices[0].delta.tool_calls]
    assert fragments[0].id.startswith("toolu_") and fragments[0].function.name == "get_weather"
    assert fragments[0].type == "function" and {f.index for f in fragments} == {0}
    pieces = [f.function.arguments for f in fragments[1:]]
    assert len(pieces) == 3 and all(pieces)
    assert json.loads("".join(pieces)) == {"city": "Paris", "unit": "celsius"}


def test_reasoning_streams_before_the_text_when_thinking_is_on(sdk, stand_in):
    stand_in.fake.enqueue(Reply(text="Paris.", reasoning="France's capital is Paris."))
    thinking = {"enabled": True, "budget_tokens": 1024, "include_reasoning": True}
    stream = sdk.chat.completions.create(model=MODEL, messages=ASK, stream=True, max_tokens=2048,
                                         extra_body={"extended_thinking": thinking})
    kinds = []
    for c in stream:
        delta = c.choices[0].delta
        if (delta.model_extra or {}).get("reasoning"):
            kinds.append(("thinking", delta.model_extra["reasoning"]["thinking"]))
        elif delta.content:
            kinds.append(("text", delta.content))
    assert kinds == [("thinking", "France's "), ("thinking", "capital "), ("thinking", "is "),
                     ("thinking", "Paris."), ("text", "Paris.")]


def test_no_reasoning_without_extended_thinking(sdk, stand_in):
    stand_in.fake.enqueue(Reply(text="Paris.", reasoning="hidden"))
    reply = sdk.chat.completions.create(model=MODEL, messages=ASK)
    assert "reasoning" not in (reply.choices[0].message.model_extra or {})


def test_an_error_event_in_the_stream_raises_in_the_sdk(sdk, stand_in):
    stand_in.fake.inject(Fault("error_event", chunks=2))
    with pytest.raises(openai.APIError, match="Injected server error"):
        list(sdk.chat.completions.create(model=MODEL, messages=ASK, stream=True))


# --- non-streaming -------------------------------------------------------------------------------------------


def test_non_streaming_completion(sdk, stand_in):
    stand_in.fake.enqueue(Reply(text="Paris.", usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}))
    reply = sdk.chat.completions.create(model=MODEL, messages=ASK, temperature=0.5, top_p=0.9, stop=["\n\n"])
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert reply.choices[0].message.content == "Paris." and reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (9, 2, 11)


def test_non_streaming_tool_call(sdk, stand_in):
    stand_in.fake.enqueue(Reply(tool_calls=[("get_weather", {"city": "Oslo", "unit": "kelvin"})]))
    reply = sdk.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER_TOOL], tool_choice="auto")
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content is None
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Oslo"


def test_max_tokens_cuts_the_reply_with_finish_reason_length(sdk, stand_in):
    stand_in.fake.enqueue(Reply(text="A reply far longer than eight characters."))
    reply = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2)
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == ("A reply ", "length")


# --- errors and limits ---------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error(stand_in):
    wrong = openai.OpenAI(base_url=stand_in.base_url + "/v1", api_key="inf-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="claude-3-7-sonnet", messages=[])  # the key is checked first
    assert caught.value.body["type"] == "authentication_error" and caught.value.status_code == 401


def test_a_known_but_unprovisioned_model_is_permission_denied(sdk):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk.chat.completions.create(model="claude-3-7-sonnet", messages=ASK)
    assert caught.value.body["type"] == "authorization_error"


def big_png():
    noise = Image.frombytes("RGB", (1300, 1300), os.urandom(1300 * 1300 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def with_tool_call(*messages):
    call = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    return [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": [call]},
            *messages]


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"model": ""}, "model is required"),
        ({"messages": []}, "non-empty"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"extra_body": {"extended_thinking": {"enabled": True, "budget_tokens": 512}}}, "at least 1024"),
        ({"max_tokens": 1024, "extra_body": {"extended_thinking": {"enabled": True, "budget_tokens": 1024}}},
         "less than max_tokens"),
        ({"messages": [*ASK, {"role": "tool", "tool_call_id": "toolu_9", "content": "20°C"}]}, "tool result"),
        ({"messages": with_tool_call({"role": "tool", "tool_call_id": "toolu_2", "content": "x"})}, "tool result"),
        ({"messages": [{"role": "assistant", "content": [image_part(image_url())]}]}, "only allowed in user"),
        ({"messages": [{"role": "user", "content": [image_part("https://example.com/cat.png")]}]}, "data URLs"),
        ({"messages": [{"role": "user", "content": [image_part(image_url("BMP"))]}]}, "data URLs"),
        ({"messages": [{"role": "user", "content": [image_part("data:image/png;base64,bm90IGFuIGltYWdl")]}]},
         "could not process"),
        ({"messages": [{"role": "user", "content": [image_part(image_url())] * 21}]}, "at most 20"),
        ({"messages": [{"role": "user", "content": [image_part(big_png())]}]}, "3.75 MB"),
    ],
    ids=["no-model", "empty", "role", "temperature", "top_p", "max_tokens", "budget-low", "budget-high",
         "orphan-tool", "wrong-tool-id", "image-in-assistant", "remote-image", "bmp", "not-an-image",
         "21-images", "too-big"],
)
def test_invalid_requests_are_400_in_herokus_shape(sdk, stand_in, overrides, words):
    request = {"model": MODEL, "messages": ASK, **overrides}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(**request)
    assert caught.value.body["type"] == "invalid_request_error" and caught.value.body["code"] == 400
    assert words in caught.value.body["message"]
    assert stand_in.fake.requests  # recorded even when refused


def test_a_valid_tool_round_trip_is_accepted(sdk, stand_in):
    stand_in.fake.enqueue(Reply(text="It is 20°C."))
    messages = with_tool_call({"role": "tool", "tool_call_id": "toolu_1", "content": "20°C"})
    reply = sdk.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
    assert reply.choices[0].message.content == "It is 20°C."


def test_429_is_a_rate_limit_error_with_its_headers(sdk, stand_in):
    stand_in.fake.inject(Fault("status", status=429, headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model=MODEL, messages=ASK, stream=True)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["type"] == "rate_limit_error"
    assert caught.value.response.headers["x-ratelimit-limit-requests"] == "150"


def test_5xx_and_a_dropped_connection(sdk, stand_in):
    stand_in.fake.inject(Fault("status", status=503, body="<html>Service Unavailable</html>"))
    stand_in.fake.inject(Fault("drop"))
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model=MODEL, messages=ASK)
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model=MODEL, messages=ASK)


def test_rate_limit_headers_count_a_sliding_minute(sdk):
    first = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=ASK)
    second = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=ASK)
    assert first.headers["x-ratelimit-limit-requests"] == "150"
    assert first.headers["x-ratelimit-limit-tokens"] == "800000"
    assert (first.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-requests"]) == (
        "149", "148")
    assert int(first.headers["x-ratelimit-remaining-tokens"]) > int(second.headers["x-ratelimit-remaining-tokens"])
    assert re.fullmatch(r"(59|60)s", second.headers["x-ratelimit-reset-requests"])
    assert re.fullmatch(r"\d+s", second.headers["x-ratelimit-reset-tokens"])


def test_enforced_limits_answer_429(stand_in, monkeypatch):
    monkeypatch.setattr("chat.standin.api.REQUEST_LIMIT", 2)
    fake = FakeInference(key=None, delay=0.0, enforce_limits=True)
    server = serve_in_thread(fake)
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="any", max_retries=0)
        client.chat.completions.create(model=MODEL, messages=ASK)
        client.chat.completions.create(model=MODEL, messages=ASK)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=MODEL, messages=ASK)
    finally:
        server.stop()
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert 0 < int(caught.value.response.headers["retry-after"]) <= 60


def test_only_the_completions_route_exists(stand_in):
    with httpx.Client(base_url=stand_in.base_url) as http:
        missing = http.post("/v1/embeddings", json={})
        wrong_method = http.get("/v1/chat/completions")
        control = http.get("/__control__/requests")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    assert wrong_method.status_code == 405
    assert control.status_code == 404


# --- driving a stand-in in another process -------------------------------------------------------------------


def test_the_management_command_serves_a_controllable_stand_in():
    port = free_port()
    command = [sys.executable, "manage.py", "fake_inference", "--port", str(port), "--key", "k",
               "--delay", "0", "--enable-control"]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_listening(base)
        httpx.post(f"{base}/__control__/replies", json={"text": "From the other process."}).raise_for_status()
        httpx.post(f"{base}/__control__/faults", json={"kind": "status", "status": 503}).raise_for_status()
        client = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=MODEL, messages=ASK)
        reply = client.chat.completions.create(model=MODEL, messages=ASK)
        recorded = httpx.get(f"{base}/__control__/requests").json()
    finally:
        process.terminate()
        process.wait(10)
    assert reply.choices[0].message.content == "From the other process."
    assert [r["body"]["messages"] for r in recorded] == [ASK, ASK]


def wait_until_listening(base, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(base + "/__control__/requests", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
