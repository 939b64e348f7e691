"""The floor under bench/concurrency.py's figures: what the bare libraries cost for the same traffic.

Three measurements, each in a child process of its own whose CPU is read around the measured work only:

- reading the model's stream: N bare httpx.AsyncClient + httpx_sse readers of the stand-in API, the same reply
  length and pacing, started at one moment, json.loads of each event's data like chat/inference/reply.py. With
  httpx's default client (what any httpx-sse user gets: a pool of 100 connections, so past 100 readers the
  rest wait for one) and with the app's own transport (chat/inference/network.py);
- writing WebSocket frames: a bare ASGI app (no Django, no Channels) under uvicorn with the app server's options
  sends each of N websockets clients, after its first message, --deltas JSON frames shaped like the app's delta
  frames (chat/turns/stream.py ``deliver``), --delay apart, then closes;
- storing a turn: N times, the user message and the reply's placeholder created in one ORM transaction on the
  same database, the least a design does that stores a message before it answers (the issue's "acknowledged
  means stored"). N of them is a floor under the time to the last of N simultaneous first tokens.

Each figure is that child's CPU divided by the events read, frames sent or turns stored, the HTTP request or
the close included, as the app's CPU per delta includes them. bench/concurrency.py prints these after each wave
and the app's CPU per delta as a multiple of the first two. On its own this starts its own stand-in:

    .venv/bin/python bench/floor.py [--users 200] [--deltas 60] [--delay 0.04]
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets
from httpx_sse import EventSource

from _measure import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RENDER_INTERVAL = 0.08  # settings.CHAT_RENDER_INTERVAL: the tail is re-rendered at most this often


def reply_text(deltas):
    """The scripted reply: one word per delta."""
    return " ".join(f"w{k}" for k in range(deltas))


# --- Reading the model's stream (runs in the child: `floor.py _read CONFIG`) ---

async def read_one(client, url, key):
    body = {"model": "claude-4-5-sonnet", "messages": [{"role": "user", "content": "Tell me a story"}],
            "stream": True, "max_tokens": 1024}
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    events = 0
    try:
        async with client.stream("POST", f"{url}/v1/chat/completions", headers=headers, json=body) as response:
            async for sse in EventSource(response).aiter_sse():
                if sse.data != "[DONE]":
                    json.loads(sse.data)
                    events += 1
        return events, None
    except Exception as exc:  # a failed stream is a result to count
        return events, type(exc).__name__


async def read_streams(url, key, n, backend):
    transport = None
    if backend:
        from chat.inference import network

        transport = network.transport(httpx.Limits(max_connections=1000, max_keepalive_connections=100))
    # httpx's default 5 s pool timeout would fail the readers queued behind its 100 connections; a timeout
    # costs no CPU, so this is still the default client's work.
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the parent reads our CPU, then says go
        started = time.perf_counter()
        results = await asyncio.gather(*(read_one(client, url, key) for _ in range(n)))
        wall = time.perf_counter() - started
    return {"count": sum(r[0] for r in results), "errors": [r[1] for r in results if r[1]], "wall": wall}


def run_child(args, env):
    """Run ``floor.py ARGS`` in a child: its CPU from its "ready" line to its result line, and that result."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"floor child {args[0]} failed (exit {proc.wait(30)})")
        before = cpu_seconds(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"floor child {args[0]} failed (exit {proc.wait(30)})")
        result = json.loads(line)
        result["cpu"] = cpu_seconds(proc.pid) - before  # read before it exits: it waits for stdin to close
        return result
    finally:
        proc.stdin.close()
        proc.wait(30)


def measure_read(api_url, key, n, deltas, env, backend=False):
    # The stand-in may be shared with the app: nothing of its wave must be left queued.
    httpx.post(f"{api_url}/__control__/reset", timeout=10)
    httpx.post(f"{api_url}/__control__/replies", json=[{"text": reply_text(deltas)}] * n, timeout=10)
    return run_child(["_read", json.dumps([api_url, key, n, backend])], env)


# --- Writing WebSocket frames: a bare ASGI app, served by uvicorn in a child ---

DELTAS, DELAY = int(os.environ.get("FLOOR_DELTAS", 60)), float(os.environ.get("FLOOR_DELAY", 0.04))


def delta_frame(reply_id, seq, delay):
    """What chat/turns/stream.py sends for this reply's ``seq``-th word: the word, and on the frames the renderer's
    throttle lets through, the paragraph re-rendered as the tail."""
    frame = {"type": "delta", "id": reply_id, "seq": seq, "text": f" w{seq - 1}"}
    if (seq - 1) % max(1, round(RENDER_INTERVAL / delay)) == 0:
        frame.update(blocks=[], tail="<p>" + " ".join(f"w{k}" for k in range(seq)) + "</p>")
    return frame


async def websocket_app(scope, receive, send):
    if scope["type"] == "lifespan":  # served with --lifespan on, like the app
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    message = await receive()
    if message["type"] != "websocket.receive":
        return
    json.loads(message["text"])
    reply_id = str(uuid.uuid4())
    for seq in range(1, DELTAS + 1):
        if seq > 1:
            await asyncio.sleep(DELAY)
        # Encoded per frame, as the app's chat/live/frames.py encode does.
        await send({"type": "websocket.send", "text": json.dumps(delta_frame(reply_id, seq, DELAY),
                                                                 separators=(",", ":"))})
    await send({"type": "websocket.close", "code": 1000})


async def ws_wave(port, n, cpu):
    async def connect():
        return await websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=60, max_size=None,
                                        compression=None)

    async def turn(ws):
        frames = 0
        try:
            await ws.send(json.dumps({"type": "send", "text": "Tell me a story", "client_id": str(uuid.uuid4())}))
            async for message in ws:  # ends at the server's close
                json.loads(message)
                frames += 1
            return frames, None
        except Exception as exc:
            return frames, type(exc).__name__

    # Every socket open before the CPU is read: the app's wave does not count its handshakes either.
    sockets = await asyncio.gather(*(connect() for _ in range(n)), return_exceptions=True)
    errors = [type(ws).__name__ for ws in sockets if isinstance(ws, BaseException)]
    await asyncio.sleep(0.5)
    before, started = cpu(), time.perf_counter()
    results = await asyncio.gather(*(turn(ws) for ws in sockets if not isinstance(ws, BaseException)))
    return {"count": sum(r[0] for r in results), "errors": errors + [r[1] for r in results if r[1]],
            "wall": time.perf_counter() - started, "cpu": cpu() - before}


def measure_send(n, deltas, delay, env):
    from tests import servers

    port = servers.free_port()
    # The options of the app's server (Procfile, chatsite/workers.py): no compression, lifespan on, no access log.
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "floor:websocket_app", "--app-dir", str(ROOT / "bench"), "--port",
         str(port), "--lifespan", "on", "--no-access-log", "--ws-per-message-deflate", "false", "--log-level",
         "warning"],
        env={**env, "FLOOR_DELTAS": str(deltas), "FLOOR_DELAY": str(delay)}, cwd=ROOT, start_new_session=True)
    try:
        servers.wait_for(lambda: servers.port_open(port) or proc.poll() is not None, 30, "the bare uvicorn")
        return asyncio.run(ws_wave(port, n, lambda: cpu_seconds(proc.pid)))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# --- Storing a turn: the least any design does that stores a message before answering it ---

STORE = """
import json, time, uuid
from django.contrib.auth import get_user_model
from django.db import transaction
from chat.models import Conversation, Message
owners = [get_user_model().objects.create(username=f"floor-{{uuid.uuid4().hex}}") for _ in range({n})]
conversations = [Conversation.objects.create(owner=owner) for owner in owners]
started = time.process_time()
for conversation in conversations:
    with transaction.atomic():  # the user message and the reply's placeholder, as one commit
        message = Message(conversation=conversation, role="user", content="Tell me a story", client_id=uuid.uuid4())
        message.save(root=True)
        Message.objects.create(conversation=conversation, parent=message, role="assistant", status="streaming")
print(json.dumps({{"cpu": time.process_time() - started, "count": {n}}}))
"""


def measure_store(n, env):
    from tests import servers

    return servers.shell(env, STORE.format(n=n))


# --- All three, and the lines they print ---

def measure(api_url, key, n, deltas, delay, env):
    return {
        "read": measure_read(api_url, key, n, deltas, env),
        "read_backend": measure_read(api_url, key, n, deltas, env, backend=True),
        "send": measure_send(n, deltas, delay, env),
        "store": measure_store(n, env),
    }


def per_unit(figure):
    return figure["cpu"] / max(figure["count"], 1) * 1e6


def report(figures, app_per_delta=None):
    """Print the floor; ``app_per_delta`` (µs, the app's CPU per delta in the same run) as a multiple of it."""
    read, send = per_unit(figures["read"]), per_unit(figures["send"])
    ratio = f"; the app's CPU per delta is {app_per_delta / (read + send):.1f}× that sum" if app_per_delta else ""
    print(f"  floor (same run): bare httpx-sse read {read:.0f} µs/event, bare uvicorn WebSocket send {send:.0f} "
          f"µs/frame, sum {read + send:.0f} µs{ratio}")
    backend = per_unit(figures["read_backend"])
    ratio = f"; the app is {app_per_delta / (backend + send):.1f}× that sum" if app_per_delta else ""
    print(f"  floor: httpx-sse read through the app's transport (chat/inference/network.py) {backend:.0f} µs/event, "
          f"sum with the send {backend + send:.0f} µs{ratio}")
    store = figures["store"]
    print(f"  floor of a turn's start: its two rows stored in one ORM transaction {per_unit(store) / 1000:.2f} ms "
          f"CPU; {store['count']} of them take {store['cpu'] * 1000:.0f} ms of one core")
    for name, what in (("read", "events read"), ("read_backend", "events read (app's transport)"),
                       ("send", "frames sent")):
        figure = figures[name]
        errors = figure["errors"]
        print(f"    {figure['count']} {what} in {figure['wall']:.1f} s, {figure['cpu']:.2f} s CPU, "
              f"{len(errors)} errors{' ' + str(sorted(set(errors))) if errors else ''}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="200")
    parser.add_argument("--deltas", type=int, default=60)
    parser.add_argument("--delay", type=float, default=0.04)
    args = parser.parse_args()
    from tests import servers

    with tempfile.TemporaryDirectory() as tmp:
        env = servers.server_env(Path(tmp), LOG_LEVEL="WARNING")
        procs = servers.Processes(Path(tmp))
        try:
            api = procs.stand_in(env, delay=args.delay)
            print(f"model paced {args.delay * 1000:.0f} ms/delta, {args.deltas} deltas a reply")
            for n in [int(n) for n in args.users.split(",")]:
                print(f"N={n}:")
                report(measure(api, env["INFERENCE_KEY"], n, args.deltas, args.delay, env))
        finally:
            procs.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["_read"]:
        result = asyncio.run(read_streams(*json.loads(sys.argv[2])))
        print(json.dumps(result), flush=True)
        sys.stdin.read()  # stay alive until the parent has read our CPU
    else:
        main()
