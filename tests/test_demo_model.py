"""The offline demo model: what the stand-in answers when nobody scripted a reply, through the openai SDK."""

import json

import openai

from tests.openai_sdk import ASK, MODEL, WEATHER_TOOL, image_part, image_url


def test_the_demo_reply_says_it_is_the_demo_and_quotes_the_question(sdk):
    reply = sdk.chat.completions.create(model=MODEL, messages=ASK).choices[0].message.content
    assert "offline demo model" in reply and "no account" in reply
    assert "> What is the capital of France?" in reply
    assert "```python" in reply and "\n- " in reply
    assert 80 <= len(reply.split()) <= 150


def test_the_demo_streams_in_word_sized_deltas(sdk):
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=ASK, stream=True))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(deltas) > 60 and max(len(d.strip()) for d in deltas) < 30


def test_the_demo_describes_attached_images(sdk):
    content = [{"type": "text", "text": "What are these?"}, image_part(image_url("PNG", (3, 2))),
               image_part(image_url("GIF", (5, 4)))]
    messages = [{"role": "user", "content": [image_part(image_url("JPEG"))]}, {"role": "assistant", "content": "?"},
                {"role": "user", "content": content}]
    reply = sdk.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
    assert "You attached 2 images: a PNG image of 3×2 pixels and a GIF image of 5×4 pixels." in reply
    assert "> What are these?" in reply


def test_the_demo_quotes_only_the_start_of_a_long_question(sdk):
    question = "word " * 100
    reply = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}])
    quote = [line for line in reply.choices[0].message.content.splitlines() if line.startswith("> ")]
    assert quote == ["> " + question[:200].rstrip() + "…"]


def test_the_demo_calls_a_tool_the_user_names_then_quotes_its_result(sdk):
    ask = [{"role": "user", "content": "Please use get_weather for me."}]
    first = sdk.chat.completions.create(model=MODEL, messages=ask, tools=[WEATHER_TOOL], tool_choice="auto")
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather",
                                                                         {"city": "example", "unit": "celsius"})
    follow_up = [*ask, first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21°C"}]
    second = sdk.chat.completions.create(model=MODEL, messages=follow_up, tools=[WEATHER_TOOL])
    assert "`get_weather`" in second.choices[0].message.content
    assert "> Sunny, 21°C" in second.choices[0].message.content


async def test_the_async_sdk_streams_the_demo(stand_in):
    client = openai.AsyncOpenAI(base_url=stand_in.base_url + "/v1", api_key="demo", max_retries=0)
    stream = await client.chat.completions.create(model=MODEL, messages=ASK, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    await client.close()
    assert "offline demo model" in text and "> What is the capital of France?" in text
