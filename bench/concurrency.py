"""Many people at once against one web process: does every turn complete, and what does a socket cost?

Starts the stand-in API (paced like a model, --delay between deltas) and one uvicorn process (SQLite +
in-memory layer, or DATABASE_URL/REDIS_URL when set), then for each N: N users, each on its own socket, send one
message at the same moment and read the reply to the end. Prints completed turns, errors, p50/p99 time to first
token, p99 of the gap added between deltas (gap minus the model's own pacing), the process's CPU and peak RSS,
and CPU per delivered delta. Last, 1,000 idle sockets: RSS per socket.

    .venv/bin/python bench/concurrency.py [--users 50,200] [--idle 1000] [--delay 0.04] [--deltas 60]
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402

USERS = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from chat.models import Conversation
out = []
for i in range({n}):
    user = get_user_model().objects.create_user(f"bench{offset}_{{i}}", password="x")
    conversation = Conversation.objects.create(owner=user)
    client = Client()
    client.force_login(user)
    out.append(["sessionid=" + client.cookies["sessionid"].value, str(conversation.public_id)])
print(json.dumps(out))
"""


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_turn(port, cookie, conversation, start, pacing):
    """Send one message when ``start`` fires; returns (ttft, added gaps, deltas, error or None)."""
    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/c/{conversation}/", origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": cookie}, open_timeout=60, max_size=None, compression=None,
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await start.wait()
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


async def wave(port, pid, users, pacing):
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_turn(port, cookie, conv, start, pacing)) for cookie, conv in users]
    await asyncio.sleep(2 + len(users) / 100)  # every socket open and ready before the sends
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    return results, cpu_seconds(pid) - cpu0, time.perf_counter() - started


async def idle_sockets(port, pid, cookie, conversation, count):
    before = memory_kib(pid, "VmRSS")
    sockets = []
    for _ in range(count):
        sockets.append(await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/c/{conversation}/", origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": cookie}, open_timeout=60, compression=None))
    for ws in sockets:
        await ws.recv()  # ready
    await asyncio.sleep(1)
    after = memory_kib(pid, "VmRSS")
    for ws in sockets:
        await ws.close()
    return (after - before) / count


def report(n, results, cpu, wall, pid):
    ttfts = [r[0] for r in results if r[0] is not None and r[3] is None]
    gaps = [g for r in results for g in r[1]]
    deltas = sum(r[2] for r in results)
    errors = [r[3] for r in results if r[3] is not None]
    print(f"N={n}: completed {len(results) - len(errors)}/{n}, errors {len(errors)} {sorted(set(errors)) or ''}")
    print(f"  TTFT p50 {percentile(ttfts, 0.5) * 1000:.0f} ms, p99 {percentile(ttfts, 0.99) * 1000:.0f} ms; "
          f"added delta gap p50 {percentile(gaps, 0.5) * 1000:.1f} ms, p99 {percentile(gaps, 0.99) * 1000:.1f} ms")
    print(f"  process CPU {cpu:.2f} s over {wall:.1f} s ({cpu / wall * 100:.0f}% of a core), "
          f"{deltas} deltas delivered, {cpu / max(deltas, 1) * 1e6:.0f} µs CPU per delta; "
          f"peak RSS {memory_kib(pid, 'VmHWM') / 1024:.0f} MiB")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="50,200")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.04)
    parser.add_argument("--deltas", type=int, default=60)
    args = parser.parse_args()
    counts = [int(n) for n in args.users.split(",")]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = servers.server_env(Path(tmp), os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", ""),
                                 UPSTREAM_REQUESTS_PER_MINUTE="100000", UPSTREAM_TOKENS_PER_MINUTE="1000000000",
                                 CHAT_USER_MESSAGES_PER_MINUTE="1000", LOG_LEVEL="WARNING")
        procs = servers.Processes(Path(tmp))
        try:
            api = procs.stand_in(env, delay=args.delay)
            web = procs.web("web", env)
            print(f"one uvicorn process, {'Postgres' if env.get('DATABASE_URL') else 'SQLite'}, "
                  f"model paced {args.delay * 1000:.0f} ms/delta, {args.deltas} deltas a reply")
            for i, n in enumerate(counts):
                users = servers.shell(env, USERS.format(n=n, offset=i))
                text = " ".join(f"w{k}" for k in range(args.deltas))
                for _ in range(n):
                    httpx.post(f"{api}/__control__/replies", json={"text": text}, timeout=10)
                results, cpu, wall = asyncio.run(wave(web.port, web.pid, users, args.delay))
                report(n, results, cpu, wall, web.pid)
            if args.idle:
                cookie, conversation = servers.shell(env, USERS.format(n=1, offset="idle"))[0]
                per_socket = asyncio.run(idle_sockets(web.port, web.pid, cookie, conversation, args.idle))
                print(f"{args.idle} idle sockets: {per_socket:.1f} KiB RSS per socket")
        finally:
            procs.close()


if __name__ == "__main__":
    main()
