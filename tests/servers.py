"""Real server processes for restart and multi-process tests: a migrated database, the stand-in API and uvicorn.

Everything the test process needs from that database (a user, a session cookie, a conversation, the stored
messages) is done by short `manage.py shell` runs against the same environment, so the test process's own
test database is never involved.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(Path(sys.executable).parent / "python")


def real_services(what):
    """``(DATABASE_URL, REDIS_URL)`` for a test of ``what`` that needs real Postgres and Redis.

    Without them the test is skipped on a laptop; under REQUIRE_SERVICES=1 (CI's second run) it fails instead.
    """
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if database_url.startswith("postgres") and redis_url:
        return database_url, redis_url
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1: {what} needs DATABASE_URL (Postgres) and REDIS_URL")
    pytest.skip(f"{what} needs DATABASE_URL (Postgres) and REDIS_URL")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def port_open(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_env(tmp_path, database_url="", redis_url="", **values):
    """A clean environment: none of the test run's settings, a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "INFERENCE_", "PYTEST", "CHAT_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "DYNO", "DEBUG", "SQLITE_PATH", "REQUIRE_SERVICES"):
        env.pop(name, None)
    env.update(DJANGO_SETTINGS_MODULE="chatsite.settings", PYTHONUNBUFFERED="1", LOG_LEVEL="INFO")
    if database_url:
        env["DATABASE_URL"] = _fresh_postgres(database_url)
    else:
        env["SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["UPSTREAM_BUDGET_KEY"] = f"test:upstream:{uuid.uuid4().hex}"
    env.update(values)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=120)
    return env


_created = []  # (maintenance url, name) of databases made by this run, dropped by Processes.close


def _fresh_postgres(url):
    import psycopg

    name = f"chat_proc_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    # The maintenance database always exists; the one named in DATABASE_URL may not (pytest-django uses test_*).
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created.append((urlunsplit(parts._replace(path="/postgres")), name))
    return urlunsplit(parts._replace(path="/" + name))


def shell(env, code):
    """Run ``code`` in `manage.py shell` against ``env``'s database; returns what it printed as JSON."""
    result = subprocess.run([PYTHON, "manage.py", "shell", "-c", code], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


SETUP = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from chat.models import Conversation
user = get_user_model().objects.create_user("alice", password="alice-password-1")
conversation = Conversation.objects.create(owner=user)
client = Client()
client.force_login(user)
print(json.dumps({"cookie": "sessionid=" + client.cookies["sessionid"].value, "conversation": str(conversation.public_id)}))
"""

REPLIES = """
import json
from chat.models import Message
print(json.dumps([{"role": m.role, "status": m.status, "content": m.content, "error": m.error}
                  for m in Message.objects.order_by("id")]))
"""


class Processes:
    """Child processes in their own process groups, all ended at teardown."""

    def __init__(self, log_dir):
        self.log_dir, self.procs = log_dir, []

    def start(self, name, args, env):
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.log_path = self.log_dir / f"{name}.log"
        self.procs.append(proc)
        return proc

    def stand_in(self, env, delay=0.05):
        port, key = free_port(), "inf-" + secrets.token_hex(6)
        self.start("api", [PYTHON, "manage.py", "fake_inference", "--port", str(port), "--key", key,
                           "--delay", str(delay), "--enable-control"], env)
        wait_for(lambda: port_open(port), 30, "the stand-in API")
        env.update(INFERENCE_URL=f"http://127.0.0.1:{port}", INFERENCE_KEY=key)
        return f"http://127.0.0.1:{port}"

    def web(self, name, env):
        port = free_port()
        proc = self.start(name, [PYTHON, "-m", "uvicorn", "chatsite.asgi:application", "--port", str(port),
                                 "--lifespan", "on", "--no-access-log"], env)
        wait_for(lambda: port_open(port) or proc.poll() is not None, 60, f"uvicorn {name}")
        assert proc.poll() is None, proc.log_path.read_text()
        proc.port = port
        return proc

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _drop_databases()


def _drop_databases():
    import psycopg

    while _created:
        url, name = _created.pop()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def script_reply(api_url, text, chunk_size=8):
    httpx.post(f"{api_url}/__control__/replies", json={"text": text, "chunk_size": chunk_size}, timeout=10)


async def connect(port, conversation, cookie):
    from websockets.asyncio.client import connect as ws_connect

    return await ws_connect(f"ws://127.0.0.1:{port}/ws/c/{conversation}/", origin=f"http://127.0.0.1:{port}",
                            additional_headers={"Cookie": cookie}, open_timeout=10)


async def receive(ws, timeout=15):
    """The next frame, skipping heartbeats."""
    import asyncio

    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def until(ws, predicate, timeout=10):
    """The first frame ``predicate`` accepts, within ``timeout`` seconds in all (heartbeats do not extend it)."""
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


async def frames_until(ws, predicate, timeout=30):
    frames = []
    while True:
        frame = await receive(ws, timeout)
        frames.append(frame)
        if predicate(frame):
            return frames


def is_final(frame):
    """A frame of an assistant reply that has stopped streaming (complete, error, stopped or interrupted)."""
    message = frame.get("message") or {}
    return frame["type"] == "message" and message.get("role") == "assistant" and message["status"] != "streaming"


def acknowledges(frame, client_id):
    """The stored user message with this client_id, or an error answering the send."""
    if frame["type"] == "error":
        return frame.get("client_id") == client_id
    return frame["type"] == "message" and frame["message"].get("client_id") == client_id


def send(text):
    return json.dumps({"type": "send", "text": text, "client_id": str(uuid.uuid4())})
