"""When to send a failed request again: the server's Retry-After and reset headers, else capped jittered backoff.

``back_off`` is what happens between two attempts; ``stream_chat`` decides whether there is another attempt.
"""

import asyncio
import email.utils
import inspect
import random
import re
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

MAX_HEADER_DELAY = 60.0  # never trust a server to park a chat turn longer than this
BACKOFF_CAP = 20.0

# Indirection so tests can record delays instead of waiting them out.
_sleep = asyncio.sleep

# ``on_retry(attempt, max_retries, delay, error)``; may return an awaitable.
RetryCallback = Callable[[int, int, float, Exception], Awaitable[None] | None]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """Seconds in a reset header: ``51s``, ``1m30s``, ``200ms``, ``1h2m`` or a bare number; None if unreadable."""
    value = (value or "").strip().lower()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if _DURATION_PART.sub("", value):
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in _DURATION_PART.findall(value))


def _retry_after_seconds(value: str | None) -> float | None:
    seconds = parse_duration(value)
    if seconds is not None or not value:
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def header_delay(headers, use_resets: bool = True) -> float | None:
    """Retry-After if given, else (for a 429) the later reset of the budgets that ran out; capped.

    Every response carries the reset headers, so they mean "wait" only on a rate-limit refusal, and a budget
    with requests or tokens remaining does not hold a retry back.
    """
    delay = _retry_after_seconds(headers.get("retry-after"))
    if delay is None and use_resets:
        resets = {kind: parse_duration(headers.get(f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")}
        spent = [kind for kind in resets if headers.get(f"x-ratelimit-remaining-{kind}", "0").strip() == "0"]
        known = [resets[kind] for kind in spent or resets if resets[kind] is not None]
        delay = max(known) if known else None
    return None if delay is None else min(delay, MAX_HEADER_DELAY)


def delay(retry_after: float | None, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (from 1): what the server asked for, else backoff."""
    if retry_after is not None:
        return retry_after
    base = getattr(settings, "INFERENCE_RETRY_BASE_DELAY", 0.5)
    # Full jitter in the upper half keeps many clients that failed together from retrying together.
    return min(BACKOFF_CAP, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def back_off(error, attempt: int, max_retries: int, on_retry: RetryCallback | None,
                   before_retry: Callable[[], Awaitable] | None) -> None:
    """Tell ``on_retry``, wait, then await ``before_retry()`` just before retry number ``attempt`` is sent."""
    wait = delay(error.retry_after, attempt)
    if on_retry is not None:
        outcome = on_retry(attempt, max_retries, wait, error)
        if inspect.isawaitable(outcome):
            await outcome
    await _sleep(wait)
    if before_retry is not None:
        await before_retry()
