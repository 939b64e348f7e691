"""Acknowledged means stored, even when server processes die with kill -9 in the middle of 1,000 sends.

Two web processes share Postgres and Redis. Clients, one conversation each, send messages with a client_id and
treat the `message` frame of their user message as the acknowledgement. Every couple of seconds one process is
killed with SIGKILL and a fresh one started; clients whose socket died reconnect to a live process and send
again whatever was not acknowledged, with the same client_id. What must hold:

* right after each kill, every message acknowledged so far is in the database (an ack never precedes the
  commit, so nothing a dead process acknowledged can be missing);
* at the end, the acknowledged client_ids equal the stored ones, with no duplicates: a message stored whose ack
  died with its process is acknowledged by the resend instead of being stored twice.

Needs DATABASE_URL (Postgres) and REDIS_URL; with REQUIRE_SERVICES=1 their absence is a failure, not a skip.
"""

import asyncio
import json
import os
import random
import signal
import time
import uuid

import httpx
import psycopg
import pytest
import websockets

from tests import servers

CLIENTS = 20
MESSAGES = 1000
KILL_EVERY = 2.5  # seconds between kills
ACK_TIMEOUT = 10  # a send unanswered this long is treated as lost: reconnect and send again

PEOPLE = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from chat.models import Conversation
out = []
for i in range({n}):
    user = get_user_model().objects.create(username=f"sender{{i}}")
    client = Client()
    client.force_login(user)
    conversation = Conversation.objects.create(owner=user)
    out.append(["sessionid=" + client.cookies["sessionid"].value, str(conversation.public_id)])
print(json.dumps(out))
"""


@pytest.fixture
def services():
    return servers.real_services("the kill -9 acknowledgement test")


def stored_client_ids(database_url):
    """Client ids of every stored user message, duplicates kept."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT client_id::text FROM chat_message WHERE role = 'user'").fetchall()
    return [client_id for (client_id,) in rows]


class Ledger:
    """What the clients did, for the checks."""

    def __init__(self):
        self.attempted, self.acked = set(), set()
        self.frames_sent = self.resends = self.lost = self.busy = self.reconnects = 0


class Cluster:
    """The live web processes; a killed one is replaced by a new process on a new port."""

    def __init__(self, procs, env):
        self.procs, self.env, self.live, self.started = procs, env, [], 0

    def start(self):
        self.started += 1
        self.live.append(self.procs.web(f"web{self.started}", self.env))

    def port(self):
        return random.choice(self.live).port

    async def kill_one(self):
        victim = random.choice(self.live)
        self.live.remove(victim)
        os.killpg(victim.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 10)


async def client(cluster, cookie, conversation, count, ledger):
    """Send ``count`` messages, each until acknowledged, across kills and reconnects."""
    pending = [str(uuid.uuid4()) for _ in range(count)]
    ws = None
    while pending:
        client_id, awaiting = pending[0], False
        try:
            if ws is None:
                ws = await servers.connect(cluster.port(), conversation, cookie)
                await servers.until(ws, lambda f: f["type"] == "ready")
            ledger.resends += client_id in ledger.attempted
            ledger.attempted.add(client_id)
            ledger.frames_sent += 1
            await ws.send(json.dumps({"type": "send", "text": f"Message {client_id}", "client_id": client_id}))
            awaiting = True
            answer = await servers.until(ws, lambda f: servers.acknowledges(f, client_id), ACK_TIMEOUT)
            awaiting = False
            if answer["type"] == "error":
                assert answer["code"] in ("busy", "restarting"), answer
                ledger.busy += 1
                await asyncio.sleep(0.3)  # the reply before is still being written, or its writer just died
                continue
            ledger.acked.add(client_id)
            pending.pop(0)
            await finished_reply(ws)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            ledger.lost += awaiting
            ws = await drop(ws, ledger)
    if ws is not None:
        await ws.close()


async def finished_reply(ws):
    """One reply at a time: wait for it to finish. After a resend there may be none to wait for (its writer
    died), and the next send then meets `busy` until the dead reply is found stale."""
    try:
        await servers.until(ws, servers.is_final, 5)
    except asyncio.TimeoutError:
        pass


async def drop(ws, ledger):
    """Forget a dead or silent socket; the caller reconnects to a live process."""
    ledger.reconnects += 1
    if ws is not None:
        try:
            await asyncio.wait_for(ws.close(), 1)
        except Exception:
            pass
    await asyncio.sleep(random.uniform(0.05, 0.3))
    return None


@pytest.mark.timeout(300)
def test_acknowledged_messages_are_stored_under_kill_9(services, tmp_path, procs):
    env = servers.server_env(
        tmp_path, *services, LOG_LEVEL="WARNING",
        CHAT_USER_MESSAGES_PER_MINUTE="100000", CHAT_USER_TOKENS_PER_DAY="1000000000000",
        UPSTREAM_REQUESTS_PER_MINUTE="1000000", UPSTREAM_TOKENS_PER_MINUTE="1000000000000",
        # A reply left streaming by a killed process blocks its conversation until found stale: keep that short.
        CHAT_FLUSH_INTERVAL="0.3", CHAT_STALE_AFTER="3", CHAT_SWEEP_INTERVAL="0.5",
    )
    api = procs.stand_in(env, delay=0.002)
    # Short replies: the test is about the acknowledgements, and 1,000 turns must fit in well under 2 minutes.
    httpx.post(f"{api}/__control__/replies", json=[{"text": "Noted, thanks."}] * (2 * MESSAGES), timeout=10)
    people = servers.shell(env, PEOPLE.format(n=CLIENTS))
    cluster = Cluster(procs, env)
    cluster.start()
    cluster.start()
    ledger, kills, subset_checks = Ledger(), 0, []
    unacked_rows = set()  # stored but not acknowledged when a kill was checked: acks lost or still in flight
    started = time.monotonic()

    async def run():
        nonlocal kills
        share = MESSAGES // CLIENTS
        clients = asyncio.gather(*(client(cluster, cookie, conv, share, ledger) for cookie, conv in people))
        clients = asyncio.ensure_future(clients)
        while not clients.done():
            await asyncio.wait([clients], timeout=KILL_EVERY)
            if clients.done():
                break
            await cluster.kill_one()
            kills += 1
            acked_before = set(ledger.acked)
            stored = set(await asyncio.to_thread(stored_client_ids, env["DATABASE_URL"]))
            subset_checks.append(acked_before - stored)
            unacked_rows.update(stored - acked_before)
            await asyncio.to_thread(cluster.start)
        await clients

    asyncio.run(run())
    took = time.monotonic() - started
    stored = stored_client_ids(env["DATABASE_URL"])
    print(f"\n{MESSAGES} messages from {CLIENTS} clients in {took:.1f} s: {ledger.frames_sent} send frames "
          f"({ledger.resends} resends, {ledger.busy} busy), {len(ledger.acked)} acknowledged, {len(stored)} rows; "
          f"{kills} kill -9, {ledger.reconnects} reconnects, {ledger.lost} sends whose answer was lost, "
          f"{len(unacked_rows)} rows seen without their ack at a kill")
    assert kills >= 3, "the run ended before enough kills to mean anything"
    assert all(not missing for missing in subset_checks), [missing for missing in subset_checks if missing]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    assert set(stored) == ledger.acked == ledger.attempted
    assert len(ledger.acked) == MESSAGES
