"""The inference client on errors before the stream: which are retried, how long it waits, and what people read."""

import pytest

from chat import inference
from chat.inference import AuthError, BadRequest, Finish, RateLimited, TextDelta
from tests.fake_api import DONE, chunk, collect, collect_until_error

pytestmark = pytest.mark.usefixtures("fresh_clients")


def heroku_error(status, message, kind):
    return {"error": {"code": status, "message": message, "type": kind}}


@pytest.mark.parametrize(
    "status, kind, error_class, words",
    [
        (401, "authentication_error", AuthError, "access key"),
        (403, "authorization_error", AuthError, "provisioned"),
        (400, "invalid_request_error", BadRequest, "temperature must be at most 1"),
    ],
)
async def test_client_errors_are_never_retried(canned, slept, status, kind, error_class, words):
    canned.add_error(status, heroku_error(status, "temperature must be at most 1", kind))
    received, failure = await collect_until_error()
    assert received == [] and type(failure) is error_class
    assert failure.status == status and words in failure.user_message
    assert len(canned.requests) == 1 and slept == []


async def test_401_and_403_say_different_things(canned):
    canned.add_error(401, heroku_error(401, "bad key", "authentication_error"))
    canned.add_error(403, heroku_error(403, "not provisioned", "authorization_error"))
    _, unauthenticated = await collect_until_error()
    _, unauthorized = await collect_until_error()
    assert unauthenticated.user_message != unauthorized.user_message


@pytest.mark.parametrize(
    "headers, delay",
    [
        ({"retry-after": "3"}, 3.0),
        ({"x-ratelimit-reset-requests": "12s", "x-ratelimit-reset-tokens": "250ms"}, 12.0),
        ({"x-ratelimit-reset-requests": "200ms", "x-ratelimit-reset-tokens": "1m5s"}, 60.0),  # capped
        ({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "40s",
          "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "5s"}, 5.0),  # only the spent budget
    ],
)
async def test_429_waits_as_the_headers_say_then_succeeds(canned, slept, headers, delay):
    canned.add_error(429, heroku_error(429, "too many requests", "rate_limit_error"), headers)
    canned.add([chunk({"content": "Made it"}, finish_reason="stop"), DONE])
    calls = []

    async def on_retry(attempt, max_retries, wait, error):
        calls.append((attempt, max_retries, wait, type(error), error.retry_after))

    assert await collect(on_retry=on_retry) == [TextDelta("Made it"), Finish("stop")]
    assert slept == [delay]
    assert calls == [(1, 2, delay, RateLimited, delay)]


async def test_429_gives_up_after_the_allowed_retries(canned, slept):
    for _ in range(3):
        canned.add_error(429, heroku_error(429, "too many", "rate_limit_error"), {"retry-after": "2"})
    received, failure = await collect_until_error()
    assert isinstance(failure, RateLimited) and failure.retry_after == 2.0
    assert "2 s" in failure.user_message
    assert len(canned.requests) == 3 and slept == [2.0, 2.0]


async def test_5xx_backs_off_exponentially_with_jitter(canned, slept, settings):
    settings.INFERENCE_RETRY_BASE_DELAY = 0.5
    canned.add_error(500, heroku_error(500, "internal", "server_error"))
    canned.add_error(502, b"<html>Bad gateway</html>")
    canned.add([chunk({"content": "Recovered"}, finish_reason="stop"), DONE])
    seen = []
    assert await collect(on_retry=lambda *args: seen.append(args[3].status)) == [
        TextDelta("Recovered"), Finish("stop")
    ]
    assert seen == [500, 502]
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0


@pytest.mark.parametrize(
    "text, seconds",
    [("51s", 51.0), ("1m30s", 90.0), ("200ms", 0.2), ("1h2m", 3720.0), ("2.5", 2.5), ("soon", None), ("", None)],
)
def test_reset_header_durations(text, seconds):
    assert inference.parse_duration(text) == seconds
