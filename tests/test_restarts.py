"""Restarts: SIGTERM saves running replies as interrupted; a reply left by a killed process is found and shown
as interrupted within CHAT_STALE_AFTER + CHAT_SWEEP_INTERVAL; a draining process starts nothing new."""

import asyncio
import os
import signal
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.turns import lifecycle
from chat.turns import records, sweeper
from chat.standin.api import Reply
from chat.live.hub import get_hub
from chat.models import Message
from tests import servers
from tests.sockets import close_hub, frames_until, is_final, next_frame, open_socket, send_frame, stored

LONG = " ".join(f"word{i}" for i in range(400))


# --- In process ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_drain_lets_short_replies_finish_and_interrupts_the_rest(socket, conversation, api, settings):
    settings.CHAT_FLUSH_INTERVAL = 0.1
    api.delay = 0.02
    api.enqueue(Reply(text=LONG, chunk_size=8))
    await socket.send_json_to(send_frame("Write a lot"))
    await frames_until(socket, lambda f: f["type"] == "delta" and f["seq"] >= 3)
    await lifecycle.drain(0.2)
    final = (await frames_until(socket, is_final))[-1]["message"]
    assert final["status"] == "interrupted" and final["content"] and LONG.startswith(final["content"])
    reply = (await stored(conversation))[-1]
    assert (reply.status, reply.content) == ("interrupted", final["content"])
    assert reply.error == records.INTERRUPTED_ERROR


@pytest.mark.django_db(transaction=True)
async def test_a_draining_process_refuses_new_sends(socket, conversation, api):
    get_hub().draining = True
    await socket.send_json_to(send_frame("Anyone?"))
    error = await next_frame(socket)
    assert (error["code"], error["message"]) == ("restarting", "The server is restarting; send again in a moment.")
    assert await stored(conversation) == []


@pytest.mark.django_db(transaction=True)
async def test_the_sweeper_shows_a_dead_writers_reply_as_interrupted(conversation, alice, settings):
    settings.CHAT_STALE_AFTER = 0.5
    settings.CHAT_SWEEP_INTERVAL = 0.2
    reply = await database_sync_to_async(Message.objects.create)(
        conversation=conversation, role="assistant", status="streaming", content="Half a", worker="",
        heartbeat_at=timezone.now(),
    )
    comm, _ = await open_socket(conversation.public_id, alice)
    frames = await frames_until(comm, is_final, timeout=5)
    assert frames[0]["type"] == "ready" and frames[1]["message"]["status"] == "streaming"
    final = frames[-1]["message"]
    assert (final["id"], final["status"], final["content"]) == (str(reply.public_id), "interrupted", "Half a")
    await comm.disconnect()
    await close_hub()


@pytest.mark.django_db(transaction=True)
async def test_the_sweeper_leaves_live_replies_alone(conversation, settings):
    settings.CHAT_STALE_AFTER = 30
    live = await database_sync_to_async(Message.objects.create)(
        conversation=conversation, role="assistant", status="streaming", heartbeat_at=timezone.now())
    dead = await database_sync_to_async(Message.objects.create)(
        conversation=conversation, role="assistant", status="streaming",
        heartbeat_at=timezone.now() - timedelta(seconds=31))
    await sweeper.sweep()
    statuses = {m.pk: m.status for m in await stored(conversation)}
    assert statuses == {live.pk: "streaming", dead.pk: "interrupted"}
    await close_hub()


# --- Real server processes ---------------------------------------------------------------------------------------


def env_for(tmp_path, **values):
    return servers.server_env(tmp_path, os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", ""),
                              **values)


async def start_long_reply(port, setup):
    ws = await servers.connect(port, setup["conversation"], setup["cookie"])
    assert (await servers.receive(ws))["type"] == "ready"
    await ws.send(servers.send("Write a lot"))
    await servers.frames_until(ws, lambda f: f["type"] == "delta" and f["seq"] >= 5)
    return ws


@pytest.mark.timeout(120)
def test_sigterm_saves_the_partial_reply_as_interrupted(tmp_path, procs):
    env = env_for(tmp_path, CHAT_SHUTDOWN_GRACE="0.5", CHAT_FLUSH_INTERVAL="0.2")
    api = procs.stand_in(env)
    setup = servers.shell(env, servers.SETUP)
    web = procs.web("web", env)
    servers.script_reply(api, LONG)

    async def run():
        ws = await start_long_reply(web.port, setup)
        web.send_signal(signal.SIGTERM)
        started = time.monotonic()
        await asyncio.to_thread(web.wait, 20)
        await ws.close()
        return time.monotonic() - started

    took = asyncio.run(run())
    # uvicorn ends by re-raising the signal it handled: a clean exit reads as "killed by SIGTERM".
    assert web.returncode in (0, -signal.SIGTERM), web.log_path.read_text()
    assert took < 10
    user, reply = servers.shell(env, servers.REPLIES)
    assert user["content"] == "Write a lot"
    assert reply["status"] == "interrupted", reply
    assert reply["content"] and LONG.startswith(reply["content"]) and len(reply["content"]) < len(LONG)
    assert "shutdown: 0 replies finished, 1 interrupted" in web.log_path.read_text()


@pytest.mark.timeout(120)
def test_kill_9_mid_reply_is_shown_interrupted_by_another_process(tmp_path, procs):
    stale_after, interval = 3.0, 0.5
    env = env_for(tmp_path, CHAT_STALE_AFTER=str(stale_after), CHAT_SWEEP_INTERVAL=str(interval),
                  CHAT_FLUSH_INTERVAL="0.2")
    api = procs.stand_in(env)
    setup = servers.shell(env, servers.SETUP)
    doomed, survivor = procs.web("doomed", env), procs.web("survivor", env)
    servers.script_reply(api, LONG)

    async def run():
        ws = await start_long_reply(doomed.port, setup)
        watcher = await servers.connect(survivor.port, setup["conversation"], setup["cookie"])
        first = await servers.frames_until(watcher, lambda f: f["type"] == "message")
        assert first[-1]["message"]["status"] == "streaming"
        os.killpg(doomed.pid, signal.SIGKILL)
        killed = time.monotonic()
        final = (await servers.frames_until(watcher, servers.is_final, timeout=stale_after + 10))[-1]
        waited = time.monotonic() - killed
        await watcher.close()
        try:
            await ws.close()
        except Exception:
            pass
        return final["message"], waited

    final, waited = asyncio.run(run())
    assert final["status"] == "interrupted" and LONG.startswith(final["content"])
    assert waited <= stale_after + interval + 1.5, waited
    reply = servers.shell(env, servers.REPLIES)[-1]
    assert (reply["status"], reply["content"]) == ("interrupted", final["content"])
    assert "sweep: reply=" in survivor.log_path.read_text()
