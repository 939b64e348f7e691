"""The built-in demo model: a serving process starts it when INFERENCE_DEMO is on and points the client at it."""

import asyncio

import pytest
from django.conf import settings as live_settings

from chat import inference
from chat.inference import Finish, TextDelta, Unavailable
from chat.standin import demo
from tests.fake_api import collect_until_error

pytestmark = pytest.mark.usefixtures("fresh_clients")


async def test_without_a_url_the_demo_model_answers(settings):
    settings.INFERENCE_URL = ""
    server = await asyncio.to_thread(demo.start)
    server.app.delay, paced = 0.0, server.app.delay
    try:
        assert settings.INFERENCE_DEMO and inference.endpoint() == (server.base_url, "demo")
        events = [event async for event in inference.stream_chat([{"role": "user", "content": "Who are you?"}])]
    finally:
        server.app.delay = paced
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "offline demo model" in text and "> Who are you?" in text
    assert events[-1] == Finish("stop") and demo.start() is server


async def record_settings_seen(scope_type):
    """The INFERENCE_URL and INFERENCE_KEY an app wrapped in StartDemoModel sees when it serves a scope."""
    seen = []

    async def app(scope, receive, send):
        seen.append((live_settings.INFERENCE_URL, live_settings.INFERENCE_KEY))

    await demo.StartDemoModel(app)({"type": scope_type}, None, None)
    return seen


# lifespan: uvicorn and gunicorn's workers; http: runserver (daphne has no lifespan); websocket: either.
@pytest.mark.parametrize("scope_type", ["lifespan", "http", "websocket"])
async def test_a_serving_process_starts_the_demo_model_before_its_first_scope(settings, scope_type):
    settings.INFERENCE_URL, settings.INFERENCE_KEY, settings.INFERENCE_DEMO = "", "", True
    assert await record_settings_seen(scope_type) == [(demo.server().base_url, "demo")]


async def test_a_configured_api_is_left_alone(settings):
    settings.INFERENCE_URL, settings.INFERENCE_KEY = "https://us.inference.heroku.com", "inf-key"
    settings.INFERENCE_DEMO = False
    assert await record_settings_seen("lifespan") == [("https://us.inference.heroku.com", "inf-key")]


async def test_without_a_url_or_a_demo_model_the_client_says_so(settings, slept):
    settings.INFERENCE_URL = ""
    received, failure = await collect_until_error()
    assert received == [] and isinstance(failure, Unavailable) and "INFERENCE_URL" in str(failure)
    assert slept == []
