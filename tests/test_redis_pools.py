"""A burst of Redis commands from one process shares a few connections (chat/redis_pools.py).

Heroku Key-Value Store plans cap clients over all processes and dynos; without a ceiling, a few hundred sockets
connecting at once opened about a hundred connections from one process. Each test names its connections so it
can count them in Redis's own client list.
"""

import asyncio
import os
import uuid

import pytest
import redis.asyncio as redis

from chat.inference import ratelimit
from chat import redis_pools
from chat.redis_pools import ChannelLayer

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI's services run sets it)"),
    pytest.mark.timeout(30),
]


async def connections_named(name):
    async with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        return sum(1 for entry in await client.client_list() if entry["name"] == name)


async def test_the_channel_layer_holds_at_most_its_ceiling(settings):
    settings.REDIS_MAX_CONNECTIONS = 3
    name = f"test-layer-{uuid.uuid4().hex[:8]}"
    layer = ChannelLayer(hosts=[{"address": os.environ["REDIS_URL"], "client_name": name}], expiry=5)
    channels = [await layer.new_channel() for _ in range(200)]
    try:
        # 200 sockets of this process joining their conversations' groups at once.
        await asyncio.gather(*(layer.group_add(f"burst-{name}-{i}", channel) for i, channel in enumerate(channels)))
        assert 1 <= await connections_named(name) <= 3
        # Every join landed: a message to the last group reaches its channel.
        await layer.group_send(f"burst-{name}-199", {"type": "ping"})
        assert await asyncio.wait_for(layer.receive(channels[199]), 5) == {"type": "ping"}
    finally:
        await layer.flush()
        await layer.close_pools()


async def test_the_upstream_budget_holds_at_most_two(monkeypatch):
    name = f"test-budget-{uuid.uuid4().hex[:8]}"
    bounded_pool = redis_pools.bounded_pool
    monkeypatch.setattr(redis_pools, "bounded_pool", lambda *args, **options: bounded_pool(*args, client_name=name, **options))
    window = ratelimit.RedisWindow(os.environ["REDIS_URL"], f"test:budget:{name}", window=5.0)
    budget = ratelimit.UpstreamBudget(window, max_requests=1000, max_tokens=10**9)
    try:
        # 200 turns of this process starting at once, each reserving its place in the minute.
        await asyncio.gather(*(budget.acquire(10) for _ in range(200)))
        assert 1 <= await connections_named(name) <= ratelimit.MAX_CONNECTIONS == 2
    finally:
        await window.redis.aclose()
