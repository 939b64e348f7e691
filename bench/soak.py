"""Soak: does anything grow while people keep chatting, and does every conversation's state go when they leave?

Runs one web process inside this script (so it can read the hub's registries) against the stand-in API, with a
second web process beside it when REDIS_URL is set so that replies are also followed from another process.
A separate client process plays --clients people for --minutes: each opens a socket on one of their
conversations, sends, and mostly reads the reply to the end, but sometimes leaves mid-reply, leaves right after
the acknowledgement and comes back for the outcome, or watches from a second socket (on the other process
when there is one). Every minute it prints the server's RSS and the sizes of its per-conversation state; at
the end, RSS growth as a ratio and the state left once every client has gone and every reply has finished,
which must all be zero.

    .venv/bin/python bench/soak.py [--minutes 30] [--clients 30] [--delay 0.03] [--think 1.0]

SQLite + in-memory layer by default; DATABASE_URL / REDIS_URL switch to Postgres + Redis.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _measure import memory_kib

from tests import servers

# A frame the soak waits for may sit behind a whole reply of a busy server.
until = partial(servers.until, timeout=60)

CONVERSATIONS_PER_CLIENT = 20
REPLY = (
    "Here is a short answer with **some emphasis** and a list:\n\n- one point\n- another point\n\n"
    "```python\nprint('hello')\n```\n\nAnd a closing paragraph that runs on for a few more words."
)


# --- the server, in this process --------------------------------------------------------------------------------


class Server:
    """uvicorn with the production worker's settings, on its own event loop in a thread."""

    def __init__(self):
        import uvicorn

        from chatsite.workers import ChatUvicornWorker

        options = {k: v for k, v in ChatUvicornWorker.CONFIG_KWARGS.items() if k not in ("loop", "http")}
        self.port = servers.free_port()
        config = uvicorn.Config("chatsite.asgi:application", port=self.port, log_config=None, log_level="warning",
                                access_log=False, **options)
        self.server = uvicorn.Server(config)
        self.loop = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="soak-server")
        self.thread.start()
        servers.wait_for(lambda: self.server.started, 60, "the in-process server")

    def _run(self):
        async def serve():
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    def state(self):
        """uvicorn's connections, the hub's registries and the channel layer's per-channel and per-group
        entries, read on the server's own loop so the snapshot is consistent."""

        async def read():
            from channels.layers import get_channel_layer

            from chat.live.hub import get_hub

            layer, hub = get_channel_layer(), get_hub()
            # uvicorn's own registries: open connections and the tasks running their ASGI apps.
            state = {"connections": len(self.server.server_state.connections),
                     "asgi_tasks": len(self.server.server_state.tasks), **hub.stats()}
            for name in ("channels", "groups", "receive_buffer"):
                entries = getattr(layer, name, None)
                if isinstance(entries, dict):
                    # The hub's own process channel is expected to stay: it is per process, not per conversation.
                    state[f"layer_{name}"] = len(entries) - (hub.channel_name in entries)
            return state

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(30)


def make_people(clients):
    """Users (without password hashing: sessions are made directly) and their conversations."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from chat.models import Conversation

    people = []
    for i in range(clients):
        user = get_user_model().objects.create(username=f"soak{i}")
        client = Client()
        client.force_login(user)
        conversations = Conversation.objects.bulk_create(
            [Conversation(owner=user) for _ in range(CONVERSATIONS_PER_CLIENT)])
        people.append({"cookie": "sessionid=" + client.cookies["sessionid"].value,
                       "conversations": [str(c.public_id) for c in conversations]})
    return people


def redis_groups(people):
    """Members of the Redis groups of the soak's conversations (channels_redis keeps one sorted set each)."""
    import redis

    from chat.models import Conversation

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    names = [c.group_name for c in Conversation.objects.filter(public_id__in=[
        conv for person in people for conv in person["conversations"]])]
    return sum(client.zcard(f"asgi:group:{name}") for name in names)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.03, help="the model's seconds between deltas")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between a client's turns")
    parser.add_argument("--run-clients", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_clients:
        return asyncio.run(run_clients(json.loads(Path(args.run_clients).read_text())))

    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    with tempfile.TemporaryDirectory() as tmp:
        env = servers.server_env(Path(tmp), database_url, redis_url, LOG_LEVEL="WARNING",
                                 UPSTREAM_REQUESTS_PER_MINUTE="1000000", UPSTREAM_TOKENS_PER_MINUTE="1000000000000",
                                 CHAT_USER_MESSAGES_PER_MINUTE="100000", CHAT_USER_TOKENS_PER_DAY="1000000000000")
        procs = servers.Processes(Path(tmp))
        try:
            api = procs.stand_in(env, delay=args.delay)
            peer = procs.web("peer", env) if redis_url else None
            os.environ.update(env)
            import django

            django.setup()
            people = make_people(args.clients)
            server = Server()
            soak(args, server, people, api, peer, Path(tmp))
            server.stop()
        finally:
            procs.close()


def soak(args, server, people, api, peer, tmp):
    pid = os.getpid()
    plan = {"port": server.port, "peer": peer.port if peer else None, "api": api, "people": people,
            "minutes": args.minutes, "think": args.think, "seed": 1}
    (tmp / "plan.json").write_text(json.dumps(plan))
    print(f"soak: {args.clients} clients for {args.minutes:g} min, model paced {args.delay * 1000:.0f} ms/delta, "
          f"{'Postgres + Redis, a second process watching' if peer else 'SQLite + in-memory layer'}")
    idle_rss = memory_kib(pid, "VmRSS")
    clients = subprocess.Popen([sys.executable, __file__, "--run-clients", str(tmp / "plan.json")],
                               stdout=subprocess.PIPE, text=True)
    print(f"{'minute':>6} {'RSS MiB':>8} {'threads':>7}  state (hub registries, channel layer)")
    print(f"{0:>6} {idle_rss / 1024:>8.1f} {threading.active_count():>7}  {server.state()}")
    started, samples = time.monotonic(), []
    minute = 0
    while clients.poll() is None:
        time.sleep(min(60, max(0.5, started + 60 * (minute + 1) - time.monotonic())))
        if time.monotonic() >= started + 60 * (minute + 1):
            minute += 1
            samples.append(memory_kib(pid, "VmRSS"))
            print(f"{minute:>6} {samples[-1] / 1024:>8.1f} {threading.active_count():>7}  {server.state()}",
                  flush=True)
    summary = json.loads(clients.stdout.read().strip().splitlines()[-1])
    # Replies left running by clients that went away finish on their own; then nothing may be left.
    servers.wait_for(lambda: server.state()["turns"] == 0, 60, "the last replies")
    time.sleep(1)
    final = server.state()
    if peer:
        final["redis_group_members"] = redis_groups(people)
    end_rss = memory_kib(pid, "VmRSS")
    print(f"clients: {json.dumps(summary)}")
    print(f"RSS idle {idle_rss / 1024:.1f} MiB, after minute 1 {(samples or [end_rss])[0] / 1024:.1f} MiB, "
          f"end {end_rss / 1024:.1f} MiB, peak {memory_kib(pid, 'VmHWM') / 1024:.1f} MiB; "
          f"end / minute 1 = {end_rss / (samples or [end_rss])[0]:.3f}")
    left = {k: v for k, v in final.items() if v}
    print(f"state after every client left: {final} -> {'all zero' if not left else 'LEFT OVER: ' + str(left)}")


# --- the clients, in their own process --------------------------------------------------------------------------


async def run_clients(plan):
    import httpx

    rng = random.Random(plan["seed"])
    deadline = time.monotonic() + plan["minutes"] * 60
    counts = {"turns": 0, "left_mid_reply": 0, "came_back": 0, "second_watcher": 0, "busy": 0, "errors": 0}
    errors = []
    async with httpx.AsyncClient(timeout=10) as api:
        person_tasks = [asyncio.create_task(person(plan, p, random.Random(rng.random()), deadline, api, counts,
                                                   errors)) for p in plan["people"]]
        await asyncio.gather(*person_tasks)
    counts["error_kinds"] = sorted(set(errors))[:10]
    print(json.dumps(counts))


async def person(plan, me, rng, deadline, api, counts, errors):
    from websockets.asyncio.client import connect

    def open_socket(port, conversation):
        return connect(f"ws://127.0.0.1:{port}/ws/c/{conversation}/", origin=f"http://127.0.0.1:{port}",
                       additional_headers={"Cookie": me["cookie"]}, open_timeout=30, compression=None)

    await asyncio.sleep(rng.uniform(0, plan["think"] * 2))
    while time.monotonic() < deadline:
        conversation = rng.choice(me["conversations"])
        style = rng.random()
        try:
            await api.post(f"{plan['api']}/__control__/replies", json={"text": REPLY})
            async with open_socket(plan["port"], conversation) as ws:
                await until(ws, lambda f: f["type"] == "ready")
                client_id = str(uuid.uuid4())
                await ws.send(json.dumps({"type": "send", "text": "Tell me something", "client_id": client_id}))
                ack = await until(ws, lambda f: servers.acknowledges(f, client_id))
                if ack["type"] == "error":
                    counts["busy" if ack["code"] == "busy" else "errors"] += 1
                    if ack["code"] != "busy":
                        errors.append(ack["code"])
                    await asyncio.sleep(rng.uniform(0.2, 1))
                    continue
                reply = (await until(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant"))
                reply_id = reply["message"]["id"]
                if style < 0.1:
                    await until(ws, lambda f: f["type"] == "delta")
                    counts["left_mid_reply"] += 1
                elif style < 0.2:
                    counts["came_back"] += 1
                elif style < 0.3:
                    async with open_socket(plan["peer"] or plan["port"], conversation) as second:
                        await outcome(second, reply_id)
                    await until(ws, lambda f: is_final(f, reply_id))
                    counts["second_watcher"] += 1
                else:
                    await until(ws, lambda f: is_final(f, reply_id))
            if 0.1 <= style < 0.2:
                await asyncio.sleep(rng.uniform(0, 1))
                async with open_socket(plan["port"], conversation) as ws:
                    await outcome(ws, reply_id)
            counts["turns"] += 1
        except Exception as exc:  # counted, not fatal: the soak measures growth, the tests check correctness
            counts["errors"] += 1
            errors.append(type(exc).__name__)
        await asyncio.sleep(rng.expovariate(1 / plan["think"]))


def is_final(frame, reply_id):
    if frame["type"] != "message":
        return False
    return frame["message"]["id"] == reply_id and frame["message"]["status"] != "streaming"


async def outcome(ws, reply_id):
    """Follow a reply from a socket opened after it started (it may have finished already)."""
    await until(ws, lambda f: f["type"] == "ready")
    await ws.send(json.dumps({"type": "sync", "ids": [reply_id]}))
    await until(ws, lambda f: is_final(f, reply_id))


if __name__ == "__main__":
    main()
