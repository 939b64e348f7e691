"""The shared upstream budget: requests and tokens per sliding window, in one process and across processes."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from chat.inference.ratelimit import LocalWindow, RedisWindow, UpstreamBudget, estimate_tokens

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_estimate_counts_text_images_and_the_reply_ceiling():
    messages = [
        {"role": "system", "content": "x" * 350},
        {"role": "user", "content": [{"type": "text", "text": "y" * 700},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
    ]
    assert estimate_tokens(messages, 1000) == 100 + 200 + 1600 + 1000


async def test_local_window_holds_requests_until_the_oldest_leaves():
    budget = UpstreamBudget(LocalWindow(window=0.4), max_requests=2, max_tokens=10_000)
    waits = []

    async def on_wait(seconds):
        waits.append(seconds)

    start = time.monotonic()
    for _ in range(3):
        await budget.acquire(10, on_wait=on_wait)
    assert time.monotonic() - start >= 0.35
    assert waits and 0.2 < waits[0] <= 0.4


async def test_local_window_counts_tokens_and_settles_them():
    budget = UpstreamBudget(LocalWindow(window=0.4), max_requests=100, max_tokens=1000)
    first = await budget.acquire(900)
    await budget.settle(first, 100)  # the reply was cheaper than estimated: room frees up at once
    start = time.monotonic()
    await budget.acquire(800)
    assert time.monotonic() - start < 0.1


async def test_a_request_bigger_than_the_budget_is_capped_not_stuck():
    budget = UpstreamBudget(LocalWindow(window=0.4), max_requests=10, max_tokens=100)
    reservation = await asyncio.wait_for(budget.acquire(10_000), 1)
    assert reservation.tokens == 100


WORKER = """
import asyncio, json, sys, time
from chat.inference.ratelimit import RedisWindow, UpstreamBudget

async def main(url, name, count):
    budget = UpstreamBudget(RedisWindow(url, name, window=1.0), max_requests=4, max_tokens=10**9)
    stamps = []
    for _ in range(count):
        await budget.acquire(1)
        stamps.append(time.time())
    print(json.dumps(stamps))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI's services run sets it)")
def test_budget_holds_across_two_processes():
    name = f"test:budget:{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": ROOT, "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, os.environ["REDIS_URL"], name, "6"], env=env,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    stamps = sorted(s for proc in procs for s in json.loads(proc.communicate(timeout=30)[0]))
    assert len(stamps) == 12
    # No sliding one-second window saw more than the four requests allowed.
    for i, start in enumerate(stamps):
        in_window = [s for s in stamps[i:] if s < start + 1.0 - 0.02]
        assert len(in_window) <= 4, (start, in_window)
    assert stamps[-1] - stamps[0] >= 2.0  # 12 requests at 4 per second need at least two more windows


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI's services run sets it)")
async def test_redis_window_settles_tokens():
    window = RedisWindow(os.environ["REDIS_URL"], f"test:budget:{uuid.uuid4().hex}", window=5.0)
    budget = UpstreamBudget(window, max_requests=100, max_tokens=1000)
    waits = []

    async def on_wait(seconds):
        waits.append(seconds)

    try:
        first = await budget.acquire(900)
        # Before the settle the window is full: another 900 would have to wait for the first to leave it.
        assert await window.try_reserve("probe", 900, time.time(), 100, 1000) > 1
        await budget.settle(first, 50)
        await asyncio.wait_for(budget.acquire(900, on_wait=on_wait), 1)
        assert waits == []
        members = await window.redis.zrange(window.name, 0, -1)
        assert sorted(int(member.rsplit(b":", 1)[1]) for member in members) == [50, 900]
    finally:
        await window.redis.aclose()
