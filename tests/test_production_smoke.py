"""Production mode, as Heroku runs it: the Procfile's own commands, DEBUG off, DYNO set, real Postgres and Redis.

The first tests need no services (they run in every CI pass): the settings import with nothing reachable, as
in Heroku's build; `check --deploy` is clean; the Procfile and app.json say what the README promises.

The last test starts the whole thing: a fresh database migrated by the Procfile's release command (which also
creates the first admin), the stand-in inference API as a separate process, and the Procfile's web command
(gunicorn, two uvicorn workers) on a local port. It then does what a person behind Heroku's router does: log in
over "HTTPS" (the router's X-Forwarded-Proto), open a conversation, stream a reply over a WebSocket, read it in
the admin. It needs DATABASE_URL and REDIS_URL; with REQUIRE_SERVICES=1 their absence is a failure, not a skip.
"""

import asyncio
import http.cookies
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.servers import free_port, port_open, real_services, wait_for

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
UNREACHABLE = {"DATABASE_URL": "postgres://nobody@127.0.0.1:9/nothing", "REDIS_URL": "redis://127.0.0.1:9/0"}


def procfile_command(process):
    """The command of one process type in the Procfile, exactly as written."""
    for line in (REPO / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process and not name.startswith("#"):
            return command.strip()
    raise AssertionError(f"no {process}: line in the Procfile")


def base_env(**values):
    """The environment of a dyno: this virtualenv first on PATH, none of the test run's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "INFERENCE_", "PYTEST"))}
    for name in ("DATABASE_URL", "REDIS_URL", "DYNO", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "PORT",
                 "WEB_CONCURRENCY"):
        env.pop(name, None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def heroku_env(**values):
    return base_env(DYNO="web.1", SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0", **values)


def run(args, env, cwd=REPO, timeout=120):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def python(*args, env, cwd=REPO):
    return run([str(VENV_BIN / "python"), *args], env, cwd)


# --- Without services --------------------------------------------------------------------------------------------


def test_check_deploy_is_clean_on_heroku():
    result = python("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=heroku_env(**UNREACHABLE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_collectstatic_works_like_the_heroku_build(tmp_path):
    """The build has the config vars but no DYNO and no reachable database or Redis."""
    copy = tmp_path / "app"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "staticfiles", "__pycache__", "*.sqlite3*", "tests", "bench", "docs", "node_modules"
    ))
    result = python("manage.py", "collectstatic", "--noinput", env=base_env(SECRET_KEY="x" * 50, **UNREACHABLE),
                    cwd=copy)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((copy / "staticfiles" / "staticfiles.json").read_text())["paths"]
    assert re.fullmatch(r"chat/chat\.[0-9a-f]{12}\.js", manifest["chat/chat.js"])
    assert "admin/css/base.css" in manifest
    assert (copy / "staticfiles" / (manifest["chat/chat.css"] + ".gz")).exists()
    assert not (REPO / "staticfiles").exists()


def production_settings(**env):
    script = (
        "import json, django; from django.conf import settings as s; django.setup(); print(json.dumps({k: getattr(s, k)"
        " for k in ['DEBUG', 'ALLOWED_HOSTS', 'CSRF_TRUSTED_ORIGINS', 'SECURE_SSL_REDIRECT', 'SECURE_REDIRECT_EXEMPT',"
        " 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER']}))"
    )
    result = python("-c", script, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_defaults_on_heroku():
    s = production_settings(**heroku_env(DJANGO_SETTINGS_MODULE="chatsite.settings", **UNREACHABLE))
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == [".herokuapp.com"]
    # The app's own origin needs no entry; *.herokuapp.com would trust every other app on Heroku.
    assert s["CSRF_TRUSTED_ORIGINS"] == []
    assert s["SECURE_SSL_REDIRECT"] and s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] >= 31536000
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SECURE_REDIRECT_EXEMPT"] == ["^healthz$"]


def test_hosts_and_origins_come_from_the_environment():
    s = production_settings(**heroku_env(
        DJANGO_SETTINGS_MODULE="chatsite.settings", ALLOWED_HOSTS="chat.example.com, .herokuapp.com",
        CSRF_TRUSTED_ORIGINS="https://chat.example.com",
    ))
    assert s["ALLOWED_HOSTS"] == ["chat.example.com", ".herokuapp.com"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://chat.example.com"]


def test_heroku_refuses_to_start_without_a_secret_key():
    env = heroku_env(DJANGO_SETTINGS_MODULE="chatsite.settings")
    del env["SECRET_KEY"]
    result = python("-c", "import django; django.setup()", env=env)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_procfile_runs_gunicorn_with_uvicorn_workers_and_a_release_phase():
    web = procfile_command("web")
    assert web.startswith("gunicorn chatsite.asgi:application -k chatsite.workers.ChatUvicornWorker")
    assert "--bind 0.0.0.0:$PORT" in web and "${WEB_CONCURRENCY:-2}" in web
    graceful = int(re.search(r"--graceful-timeout \$\{GRACEFUL_TIMEOUT:-(\d+)\}", web).group(1))
    assert graceful < 30
    assert procfile_command("release") == "python manage.py migrate --noinput && python manage.py ensure_superuser"


def test_app_json_describes_the_deploy_button():
    app = json.loads((REPO / "app.json").read_text())
    plans = {addon["plan"]: addon.get("as") for addon in app["addons"]}
    assert plans == {"heroku-postgresql:essential-0": None, "heroku-redis:mini": None,
                     "heroku-inference:claude-4-5-sonnet": "INFERENCE"}
    assert app["env"]["SECRET_KEY"] == {"description": "Django's secret key.", "generator": "secret"}
    assert {"DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"} <= set(app["env"])
    assert app["formation"]["web"]["quantity"] >= 1
    assert app["buildpacks"] == [{"url": "heroku/python"}]


def test_log_records_are_single_key_value_lines():
    from django.conf import settings

    formatter = settings.LOGGING["formatters"]["keyvalue"]
    fmt = formatter["()"](fmt=formatter["fmt"], datefmt=formatter["datefmt"])
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        record = logging.LogRecord("chat.turn", logging.ERROR, __file__, 1, "turn reply=%s", ("r1",), sys.exc_info())
    line = fmt.format(record)
    assert "\n" not in line
    assert re.match(r"time=\S+ level=ERROR logger=chat\.turn turn reply=r1\\nTraceback", line)


# --- The whole thing, with Postgres and Redis --------------------------------------------------------------------


def with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="module")
def services():
    return real_services("the production smoke test")


@pytest.fixture(scope="module")
def smoke_database(services):
    """A database of its own, created for this module and dropped after it."""
    import psycopg

    name = f"chat_smoke_{uuid.uuid4().hex[:10]}"
    admin_url = with_database(services[0], "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(services[0], name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def process_group():
    """Processes this module starts, each in its own group so SIGTERM reaches gunicorn's workers too."""
    started = []

    def start(command, env, log_path):
        log = open(log_path, "w")
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def dyno(services, smoke_database, process_group, tmp_path_factory):
    """The release phase, the stand-in API and the web process, configured like a Heroku app."""
    logs = tmp_path_factory.mktemp("dyno")
    api_port, web_port, api_key = free_port(), free_port(), "inf-" + secrets.token_hex(8)
    admin = {"username": "owner", "password": secrets.token_urlsafe(16), "email": "owner@example.com"}
    process_group([str(VENV_BIN / "python"), "manage.py", "fake_inference", "--port", str(api_port), "--key", api_key],
                  base_env(), logs / "api.log")
    env = heroku_env(
        DATABASE_URL=smoke_database, REDIS_URL=services[1],
        # The local Postgres speaks no TLS; Heroku's always does (the default with DYNO set).
        DATABASE_SSL_REQUIRE="0",
        ALLOWED_HOSTS="127.0.0.1,localhost", PORT=str(web_port), WEB_CONCURRENCY="2",
        INFERENCE_URL=f"http://127.0.0.1:{api_port}", INFERENCE_KEY=api_key, LOG_LEVEL="INFO",
        DJANGO_SUPERUSER_USERNAME=admin["username"], DJANGO_SUPERUSER_PASSWORD=admin["password"],
        DJANGO_SUPERUSER_EMAIL=admin["email"],
    )
    release = run(["bash", "-c", procfile_command("release")], env, timeout=180)
    assert release.returncode == 0, release.stdout + release.stderr
    assert admin["password"] not in release.stdout + release.stderr
    web = process_group(["bash", "-c", "exec " + procfile_command("web")], env, logs / "web.log")
    wait_for(lambda: port_open(api_port), 30, "the stand-in API")
    wait_for(lambda: port_open(web_port) or web.poll() is not None, 60, "gunicorn")
    assert web.poll() is None, (logs / "web.log").read_text()
    return {"port": web_port, "admin": admin, "release": release.stdout, "log": logs / "web.log", "proc": web}


class RouterClient:
    """A browser behind Heroku's router: HTTPS as far as Django can tell (X-Forwarded-Proto), plain HTTP on the
    wire, so the Secure cookies are kept by hand."""

    def __init__(self, port):
        self.port, self.origin, self.cookies = port, f"https://127.0.0.1:{port}", {}

    def request(self, method, path, headers=None, **kwargs):
        sent = {"X-Forwarded-Proto": "https", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = self.cookie_header()
        response = httpx.request(method, f"http://127.0.0.1:{self.port}{path}", headers=sent, timeout=30, **kwargs)
        for raw in response.headers.get_list("set-cookie"):
            cookie = http.cookies.SimpleCookie(raw)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        return response

    def cookie_header(self):
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def post_form(self, path, data):
        data = {**data, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        # HTTPS CSRF checks the Origin (and the Referer) against the host.
        return self.request("POST", path, data=data, headers={"Origin": self.origin, "Referer": self.origin + path})


async def stream_one_reply(port, conversation_id, cookie_header, text):
    """Send one message over the socket and return every frame up to the finished reply."""
    from websockets.asyncio.client import connect

    frames = []
    async with connect(
        f"ws://127.0.0.1:{port}/ws/c/{conversation_id}/", origin=f"https://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie_header, "X-Forwarded-Proto": "https"}, open_timeout=10,
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(json.dumps({"type": "send", "text": text, "client_id": str(uuid.uuid4())}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            frames.append(frame)
            message = frame.get("message") or {}
            if frame["type"] == "message" and message.get("role") == "assistant" and message["status"] != "streaming":
                return frames


@pytest.mark.timeout(300)
def test_production_server_end_to_end(dyno):
    port, admin = dyno["port"], dyno["admin"]
    assert f"created superuser '{admin['username']}'" in dyno["release"]

    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["checks"]["channel_layer"]["ok"] is True
    plain = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")

    browser = RouterClient(port)
    login_page = browser.request("GET", "/accounts/login/")
    assert login_page.status_code == 200
    assert "max-age=31536000" in login_page.headers["strict-transport-security"]
    logged_in = browser.post_form("/accounts/login/", {"username": admin["username"], "password": admin["password"]})
    assert logged_in.status_code == 302, logged_in.text[:500]
    session_cookie = next(c for c in logged_in.headers.get_list("set-cookie") if c.startswith("sessionid="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie

    created = browser.request("POST", "/c/new/", headers={
        "X-CSRFToken": browser.cookies["csrftoken"], "Origin": browser.origin, "Referer": browser.origin + "/"})
    assert created.status_code == 201, created.text[:500]
    conversation_id = created.json()["id"]

    text = "Hello from the production smoke test"
    frames = asyncio.run(stream_one_reply(port, conversation_id, browser.cookie_header(), text))
    reply = frames[-1]["message"]
    assert reply["status"] == "complete" and reply["content"], frames[-1]
    assert any(frame["type"] == "delta" for frame in frames)

    changelist = browser.request("GET", "/admin/chat/conversation/")
    assert changelist.status_code == 200 and text[:40] in changelist.text
    for path in ("/admin/chat/conversation/dashboard/?days=7", "/admin/chat/conversation/inbox/"):
        assert browser.request("GET", path).status_code == 200, path
    transcript = browser.request("GET", re.search(r'href="(/admin/chat/conversation/\d+/change/)', changelist.text)[1])
    assert transcript.status_code == 200 and text in transcript.text

    proc = dyno["proc"]
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    log = dyno["log"].read_text()
    assert log.count("Booting worker") == 2, log
    turn_lines = [line for line in log.splitlines() if "logger=chat.turn" in line]
    assert len(turn_lines) == 1
    assert re.search(r"level=INFO logger=chat\.turn turn reply=\S+ .*status=complete", turn_lines[0])
    assert text not in log and reply["content"][:30] not in log and admin["password"] not in log
