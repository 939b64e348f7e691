"""What the app adds on top of the model: time to first token and total time, app vs direct, same run.

Starts the stand-in API and the app (uvicorn, embedded defaults: SQLite + in-memory layer) as separate
processes, then alternates turns: one straight to the stand-in over HTTP (the baseline), one through the
browser path (WebSocket send → user message saved → reply streamed over the socket → reply saved). Prints
p50/p99 of the added milliseconds, their ratio to the baseline, and the app process's CPU per turn.

    .venv/bin/python bench/relay_overhead.py [--turns 60] [--delay 0.002]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _measure import cpu_seconds

from tests import servers

PYTHON = sys.executable
APP_PREFIX = os.environ.get("BENCH_APP_PREFIX", "").split()
QUESTION = "Explain what a relay adds to a streamed reply."


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def prepare_database(env, conversations):
    """Migrate a fresh SQLite file and create a user, a session and conversations; returns (cookie, ids).

    Each turn gets a conversation of its own, so the app sends the model the same one-message prompt as the
    direct client does, and only the relay itself is compared."""
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from chat.models import Conversation

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    client = Client()
    client.force_login(user)
    ids = [str(Conversation.objects.create(owner=user).public_id) for _ in range(conversations)]
    return f"sessionid={client.cookies['sessionid'].value}", ids


async def direct_turn(client, base_url):
    start = time.perf_counter()
    first = None
    body = {"model": "claude-4-5-sonnet", "messages": [{"role": "user", "content": QUESTION}], "stream": True,
            "max_tokens": 1024}
    async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body,
                             headers={"Authorization": "Bearer bench"}) as response:
        async for line in response.aiter_lines():
            if first is None and '"content"' in line:
                first = time.perf_counter()
    return first - start, time.perf_counter() - start


async def app_turn(ws):
    start = time.perf_counter()
    first = None
    await ws.send(json.dumps({"type": "send", "text": QUESTION, "client_id": str(uuid.uuid4())}))
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "error":
            raise RuntimeError(f"the app refused a turn: {frame}")
        if frame["type"] == "delta" and first is None:
            first = time.perf_counter()
        if frame["type"] == "message" and frame["message"]["role"] == "assistant" and \
                frame["message"]["status"] != "streaming":
            assert frame["message"]["status"] == "complete", frame
            return first - start, time.perf_counter() - start


async def relayed_turn(app_port, headers, conversation, app_pid):
    """One turn through the app on a socket opened beforehand; returns (timings, app CPU seconds)."""
    async with websockets.connect(
        f"ws://127.0.0.1:{app_port}/ws/c/{conversation}/", additional_headers=headers, max_size=None
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        before = cpu_seconds(app_pid)
        timings = await app_turn(ws)
        return timings, cpu_seconds(app_pid) - before


async def run_turns(args, api_url, app_port, cookie, conversations, app_pid):
    direct, relayed = [], []
    cpu_used = client_cpu = 0.0
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{app_port}"}
    async with httpx.AsyncClient(timeout=30) as client:
        for conversation in conversations[:3]:  # warm-up: imports, first connections, SQLite pages
            await direct_turn(client, api_url)
            await relayed_turn(app_port, headers, conversation, app_pid)
        for conversation in conversations[3:]:
            before = time.process_time()
            direct.append(await direct_turn(client, api_url))
            client_cpu += time.process_time() - before
            timings, cpu = await relayed_turn(app_port, headers, conversation, app_pid)
            relayed.append(timings)
            cpu_used += cpu
    return direct, relayed, cpu_used, client_cpu


def report(direct, relayed, cpu_used, client_cpu, turns):
    rows = []
    for label, index in (("time to first token", 0), ("total time", 1)):
        base = [d[index] * 1000 for d in direct]
        app = [r[index] * 1000 for r in relayed]
        added = [a - b for a, b in zip(app, base)]
        rows.append((label, statistics.median(base), statistics.median(app), statistics.median(added),
                     percentile(added, 99), statistics.median(app) / statistics.median(base)))
    print(f"\n{turns} turns each, alternating; milliseconds")
    print(f"{'':22}{'direct p50':>12}{'app p50':>10}{'added p50':>11}{'added p99':>11}{'ratio':>8}")
    for label, base, app, added50, added99, ratio in rows:
        print(f"{label:22}{base:12.2f}{app:10.2f}{added50:11.2f}{added99:11.2f}{ratio:8.2f}")
    app_ms, client_ms = cpu_used / turns * 1000, client_cpu / turns * 1000
    print(f"app server CPU per turn: {app_ms:.2f} ms (saving both messages, streaming, the final save)")
    print(f"baseline: a bare httpx client reading the same stream: {client_ms:.2f} ms CPU per turn; "
          f"app/baseline {app_ms / client_ms:.2f}, app minus baseline {app_ms - client_ms:.2f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--delay", type=float, default=0.002, help="stand-in seconds between deltas")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="relay-bench-")
    api_port, app_port = servers.free_port(), servers.free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings", "SQLITE_PATH": f"{workdir}/db.sqlite3",
           "INFERENCE_URL": api_url, "INFERENCE_KEY": "bench", "LOG_LEVEL": "WARNING", "DEBUG": "0",
           # One user sends every turn here: per-user quotas would measure the quota, not the relay.
           "CHAT_USER_MESSAGES_PER_MINUTE": "1000000", "CHAT_USER_TOKENS_PER_DAY": "1000000000"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    cookie, conversations = prepare_database(env, args.turns + 3)
    procs = [
        subprocess.Popen([PYTHON, "manage.py", "fake_inference", "--port", str(api_port), "--key", "bench",
                          "--delay", str(args.delay)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL),
        subprocess.Popen(APP_PREFIX + [PYTHON, "-m", "uvicorn", "chatsite.asgi:application", "--port", str(app_port),
                          "--lifespan", "off", "--log-level", "warning", "--ws-per-message-deflate", "false"],
                         cwd=ROOT, env=env),
    ]
    try:
        for port in (api_port, app_port):
            servers.wait_for(lambda port=port: servers.port_open(port), 20, f"a listener on {port}")
        results = asyncio.run(run_turns(args, api_url, app_port, cookie, conversations, procs[1].pid))
        report(*results, args.turns)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
