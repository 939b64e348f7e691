"""Many people at once against one web process: does every turn complete, and what does a socket cost?

Starts the stand-in API (paced like a model, --delay between deltas) and one uvicorn process (SQLite +
in-memory layer, or DATABASE_URL/REDIS_URL when set), then for each N: N users, each on its own socket, send one
message at the same moment (or spread evenly over --spread seconds) and read the reply to the end. Prints
completed turns, errors, p50/p99 time to first token, p99 of the gap added between deltas (gap minus the model's
own pacing), the server's CPU and peak RSS, CPU per delivered delta, the CPU the stand-in and the clients took
from the same cores and, on Postgres, the peak number of connections to the database (and to Redis, when
set). Last, 1,000 idle sockets
on a fresh server: RSS per socket.

After each wave, the floor under CPU per delta (bench/floor.py), measured in the same run for the same N, reply
length and pacing: the CPU per event of bare httpx + httpx-sse readers of the stand-in (httpx's default client,
and the app's own transport, chat/inference/network.py), the CPU per frame of a bare uvicorn WebSocket app
(no Django, no Channels) sending frames shaped like the app's deltas, their sum, and the app's CPU per delta as a
multiple of that sum. A ratio against what the libraries alone cost on this machine in this run, so other load
on the machine does not move it the way it moves the absolute figure. And the floor of a turn's start: N turns'
two rows stored in one ORM transaction each, on the same database. --no-floor skips all of it.

Automatic titles are off: each user's one turn is a new conversation's first, and a title request is a
cost a conversation pays once, not every turn.

CPU per delivered delta includes each turn's fixed costs (storing it, the HTTP request, the outcome); the cost
of one more delta is the difference between two runs with different --deltas, divided by the extra deltas.

--procfile runs the Procfile's web command instead (gunicorn with WEB_CONCURRENCY uvicorn workers, default 2):
CPU is then summed over the workers and RSS is the largest worker's. --profile FILE records the server with
py-spy during the waves (collapsed stacks, one line per stack; `pip install py-spy`).

    .venv/bin/python bench/concurrency.py [--users 50,200] [--idle 1000] [--delay 0.04] [--deltas 60]
                                          [--spread 0] [--procfile] [--profile FILE] [--no-floor]
"""

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import floor
from _measure import cpu_seconds, memory_kib, settle
from _profiler import start_profiler, summarize_profile

from tests import servers

USERS = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from chat.models import Conversation
out = []
for i in range({n}):
    # No password: hashing one costs ~0.3 s, and the session is made directly.
    user = get_user_model().objects.create(username=f"bench{offset}_{{i}}")
    conversation = Conversation.objects.create(owner=user)
    client = Client()
    client.force_login(user)
    out.append(["sessionid=" + client.cookies["sessionid"].value, str(conversation.public_id)])
print(json.dumps(out))
"""


class Server:
    """The web process, or gunicorn's workers under --procfile: their pids, CPU and memory."""

    def __init__(self, proc, port):
        self.proc, self.port = proc, port

    def pids(self):
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        workers = [int(pid) for pid in children.read_text().split()] if children.exists() else []
        # uvicorn serves in the process itself; gunicorn's master only supervises its workers.
        return workers if "gunicorn" in " ".join(self.proc.args) else [self.proc.pid]

    def cpu_seconds(self):
        return sum(cpu_seconds(pid) for pid in self.pids())

    def memory_kib(self, field, total=False):
        """The largest worker's figure (each worker is a process with its own memory), or their sum."""
        figures = [memory_kib(pid, field) for pid in self.pids()]
        return sum(figures) if total else max(figures)


class ConnectionPeak:
    """Polls, while a wave runs, the connections open to the bench's Postgres database and, with Redis, the
    clients connected to Redis above those before the wave (the server's channel layer and budget pools)."""

    def __init__(self, database_url, redis_url):
        import psycopg
        import redis

        self.conn = psycopg.connect(database_url, autocommit=True)
        self.name = self.conn.info.dbname
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None
        self.redis_before = self._redis_clients()
        self.peak = self.redis_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _redis_clients(self):
        return self.redis.info("clients")["connected_clients"] - 1 if self.redis else 0  # minus this poller

    def _poll(self):
        query = "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = %s"  # minus this poller
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.conn.execute(query, [self.name]).fetchone()[0])
            self.redis_peak = max(self.redis_peak, self._redis_clients() - self.redis_before)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.conn.close()
        if self.redis:
            self.redis.close()


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_turn(port, cookie, conversation, start, pacing, offset=0.0):
    """Send one message ``offset`` seconds after ``start`` fires; returns (ttft, added gaps, deltas, error)."""
    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/c/{conversation}/", origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": cookie}, open_timeout=60, max_size=None, compression=None,
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await start.wait()
            if offset:
                await asyncio.sleep(offset)
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "send", "text": "Tell me a story", "client_id": str(uuid.uuid4())}))
            first, last, gaps, deltas = None, None, [], 0
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
                now = time.perf_counter()
                if frame["type"] == "delta":
                    deltas += 1
                    if first is None:
                        first = now - sent
                    elif frame["text"]:
                        gaps.append(max(0.0, now - last - pacing))
                    last = now
                elif frame["type"] == "error":
                    return None, [], deltas, frame["code"]
                elif frame["type"] == "message" and frame["message"]["role"] == "assistant" and \
                        frame["message"]["status"] != "streaming":
                    status = frame["message"]["status"]
                    return first, gaps, deltas, None if status == "complete" else status
    except Exception as exc:  # a failed socket is a result to count, not a crash of the bench
        return None, [], 0, type(exc).__name__


async def wave(server, users, pacing, spread, api_pid):
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_turn(server.port, cookie, conv, start, pacing, spread * i / len(users)))
             for i, (cookie, conv) in enumerate(users)]
    await asyncio.sleep(2 + len(users) / 100)  # every socket open and ready before the sends
    cpu0, others0 = server.cpu_seconds(), others_cpu(api_pid)
    started = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    others = [after - before for after, before in zip(others_cpu(api_pid), others0)]
    return results, server.cpu_seconds() - cpu0, time.perf_counter() - started, others


def others_cpu(api_pid):
    """CPU seconds of the stand-in API and of these clients: they share the machine's cores with the server."""
    return cpu_seconds(api_pid), time.process_time()


async def idle_sockets(server, cookie, conversation, count, warm_up=20):
    """RSS added per open socket; the first ``warm_up`` sockets pay the server's one-time costs (imports,
    caches, the database pool) and are not counted."""
    port = server.port
    sockets = []

    async def open_more(n):
        for _ in range(n):
            sockets.append(await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/c/{conversation}/", origin=f"http://127.0.0.1:{port}",
                additional_headers={"Cookie": cookie}, open_timeout=60, compression=None))
            await sockets[-1].recv()  # ready
        await asyncio.sleep(1)

    await open_more(warm_up)
    before = server.memory_kib("VmRSS", total=True)
    await open_more(count)
    after = server.memory_kib("VmRSS", total=True)
    for ws in sockets:
        await ws.close()
    return (after - before) / count


def report(n, results, cpu, wall, others, server, connections=None):
    """Print the wave's figures; returns its CPU per delivered delta in µs."""
    ttfts = [r[0] for r in results if r[0] is not None and r[3] is None]
    gaps = [g for r in results for g in r[1]]
    deltas = sum(r[2] for r in results)
    errors = [r[3] for r in results if r[3] is not None]
    print(f"N={n}: completed {len(results) - len(errors)}/{n}, errors {len(errors)} {sorted(set(errors)) or ''}")
    print(f"  TTFT p50 {percentile(ttfts, 0.5) * 1000:.0f} ms, p99 {percentile(ttfts, 0.99) * 1000:.0f} ms; "
          f"added delta gap p50 {percentile(gaps, 0.5) * 1000:.1f} ms, p99 {percentile(gaps, 0.99) * 1000:.1f} ms")
    print(f"  process CPU {cpu:.2f} s over {wall:.1f} s ({cpu / wall * 100:.0f}% of a core), "
          f"{deltas} deltas delivered, {cpu / max(deltas, 1) * 1e6:.0f} µs CPU per delta; "
          f"peak RSS {server.memory_kib('VmHWM') / 1024:.0f} MiB")
    print(f"  on the same cores: stand-in API {others[0]:.2f} s CPU, bench clients {others[1]:.2f} s CPU")
    if connections is not None:
        redis = f"; Redis clients above those before the wave: peak {connections.redis_peak}" if connections.redis else ""
        print(f"  Postgres connections to the bench database: peak {connections.peak}{redis}")
    return cpu / max(deltas, 1) * 1e6


def start_web(procs, env, procfile, name="web"):
    if not procfile:
        web = procs.web(name, env)
        return Server(web, web.port)
    command = re.search(r"^web:\s*(.+)$", (ROOT / "Procfile").read_text(), re.M)[1]
    port = servers.free_port()
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's gunicorn
    proc = procs.start(name, ["bash", "-c", "exec " + command], {**env, "PORT": str(port), "PATH": path})
    servers.wait_for(lambda: servers.port_open(port) or proc.poll() is not None, 60, "gunicorn")
    assert proc.poll() is None, proc.log_path.read_text()
    server = Server(proc, port)
    servers.wait_for(lambda: len(server.pids()) >= int(env.get("WEB_CONCURRENCY", 2)), 30, "the workers")
    return server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="50,200")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.04)
    parser.add_argument("--deltas", type=int, default=60)
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which the sends are spread")
    parser.add_argument("--procfile", action="store_true", help="run the Procfile's web command (gunicorn)")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the server to this file")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare libraries' floor after each wave")
    args = parser.parse_args()
    counts = [int(n) for n in args.users.split(",")]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = servers.server_env(Path(tmp), os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", ""),
                                 UPSTREAM_REQUESTS_PER_MINUTE="100000", UPSTREAM_TOKENS_PER_MINUTE="1000000000",
                                 CHAT_USER_MESSAGES_PER_MINUTE="1000", LOG_LEVEL="WARNING",
                                 # Every user here starts a new conversation, so every turn would also make the
                                 # title request a conversation makes once, and it would take a queued reply.
                                 CHAT_AUTO_TITLES="0")
        procs = servers.Processes(Path(tmp))
        postgres = env.get("DATABASE_URL", "").startswith("postgres")
        try:
            api = procs.stand_in(env, delay=args.delay)
            api_pid = procs.procs[-1].pid
            server = start_web(procs, env, args.procfile)
            shape = f"gunicorn, {len(server.pids())} workers" if args.procfile else "one uvicorn process"
            layer = "Redis" if env.get("REDIS_URL") else "in-memory"
            sends = f"sends spread over {args.spread:g} s" if args.spread else "sends at one moment"
            print(f"{shape}, {'Postgres' if postgres else 'SQLite'} + {layer}, model paced "
                  f"{args.delay * 1000:.0f} ms/delta, {args.deltas} deltas a reply, {sends}")
            time.sleep(1)
            print(f"idle RSS after start: {server.memory_kib('VmRSS') / 1024:.0f} MiB")
            profiler = start_profiler(server, args.profile) if args.profile else None
            for i, n in enumerate(counts):
                users = servers.shell(env, USERS.format(n=n, offset=i))
                text = floor.reply_text(args.deltas)
                httpx.post(f"{api}/__control__/replies", json=[{"text": text}] * n, timeout=10)
                connections = ConnectionPeak(env["DATABASE_URL"], env.get("REDIS_URL")) if postgres else None
                if connections:
                    with connections:
                        outcome = asyncio.run(wave(server, users, args.delay, args.spread, api_pid))
                else:
                    outcome = asyncio.run(wave(server, users, args.delay, args.spread, api_pid))
                per_delta = report(n, *outcome, server, connections)
                if not args.no_floor:
                    # The wave's title requests are still running in the server and the stand-in.
                    settle([api_pid, *server.pids()])
                    floor.report(floor.measure(api, env["INFERENCE_KEY"], n, args.deltas, args.delay, env), per_delta)
            if profiler:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(30)
                summarize_profile(args.profile)
            if args.idle:
                # On a fresh server: one that has served the waves reuses the memory they freed, and the
                # sockets would look free.
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait(10)
                server = start_web(procs, env, args.procfile, name="idle")
                cookie, conversation = servers.shell(env, USERS.format(n=1, offset="idle"))[0]
                per_socket = asyncio.run(idle_sockets(server, cookie, conversation, args.idle))
                print(f"{args.idle} idle sockets on a fresh server: {per_socket:.1f} KiB RSS per socket")
        finally:
            procs.close()


if __name__ == "__main__":
    main()
