"""/healthz in a real server process on Redis: true while sockets come and go, false when Redis is gone.

The hub of a process that has served a socket keeps a blocking read of the layer open for good; the check must
not wait behind it. Needs REDIS_URL (CI's services run sets it).
"""

import asyncio
import os

import httpx
import pytest
import redis

from tests import servers

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI's services run sets it)")


def _channel_keys():
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        return {key for key in client.scan_iter("asgi:specific.*")}


async def _healthz(client, port):
    response = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    return response.status_code, response.json()


async def _checks_with_sockets(port, env):
    setup = servers.shell(env, servers.SETUP)
    async with httpx.AsyncClient() as client:
        first = await servers.connect(port, setup["conversation"], setup["cookie"])
        await servers.until(first, lambda frame: frame["type"] == "ready")
        results = [await _healthz(client, port) for _ in range(4)]
        # Sockets connecting while checks run.
        connecting = [servers.connect(port, setup["conversation"], setup["cookie"]) for _ in range(3)]
        during = await asyncio.gather(*(_healthz(client, port) for _ in range(3)), *connecting)
        results += during[:3]
        for ws in (first, *during[3:]):
            await ws.close()
        results.append(await _healthz(client, port))
    return results


def test_healthy_with_sockets_connected_before_and_during_the_check(tmp_path, procs):
    before = _channel_keys()
    env = servers.server_env(tmp_path, redis_url=os.environ["REDIS_URL"])
    web = procs.web("web", env)
    results = asyncio.run(_checks_with_sockets(web.port, env))
    assert [status for status, _ in results] == [200] * len(results), results
    assert all(body["checks"]["channel_layer"]["ok"] for _, body in results)
    # Every check's message was consumed: no channel key of this process is left in Redis.
    servers.wait_for(lambda: _channel_keys() <= before, 5, "the check's keys to go")


def test_unreachable_redis_is_a_503_naming_the_channel_layer(tmp_path, procs):
    env = servers.server_env(tmp_path, redis_url="redis://127.0.0.1:9/0")
    web = procs.web("web", env)
    response = httpx.get(f"http://127.0.0.1:{web.port}/healthz", timeout=20)
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["channel_layer"] == {"ok": False} and body["checks"]["database"]["ok"] is True
