"""Which pages may open the conversation socket: the app's own origin and CSRF_TRUSTED_ORIGINS, nothing else.

Configured as on Heroku (``ALLOWED_HOSTS=.herokuapp.com``, the router's X-Forwarded-Proto trusted), alice's
browser carries her cookie to any page's socket: only the Origin tells her own tab from another app's. The same
rules are checked on real servers at the end: runserver on a laptop, and gunicorn behind a forwarded-proto header
in tests/test_production_smoke.py.
"""

import asyncio

import pytest

from tests.servers import PYTHON, SETUP, free_port, port_open, receive, server_env, shell, wait_for
from tests.sockets import close_hub, next_frame, open_socket

pytestmark = pytest.mark.django_db(transaction=True)

APP = b"myapp.herokuapp.com"
HTTPS = [(b"x-forwarded-proto", b"https")]


@pytest.fixture
def heroku(settings):
    settings.ALLOWED_HOSTS = [".herokuapp.com"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = []
    return settings


async def gets_ready(conversation, alice, origin, host=APP, headers=HTTPS):
    """Whether alice's socket from ``origin`` is accepted and answered ``ready``."""
    comm, connected = await open_socket(conversation.public_id, alice, origin=origin, host=host, headers=headers)
    try:
        return connected and (await next_frame(comm))["type"] == "ready"
    finally:
        if connected:
            await comm.disconnect()
        await close_hub()


async def test_the_apps_own_https_origin_is_accepted(heroku, conversation, alice):
    assert await gets_ready(conversation, alice, b"https://myapp.herokuapp.com")


@pytest.mark.parametrize("origin", [
    b"https://evil.herokuapp.com",  # another app under the ALLOWED_HOSTS wildcard
    b"http://myapp.herokuapp.com",  # a plain-HTTP page, while the request came over HTTPS
    b"https://myapp.herokuapp.com:8443",
    b"https://myapp.herokuapp.com.evil.example",
    b"https://herokuapp.com",
    b"null",  # a sandboxed frame or a file
    b"https://myapp.herokuapp.com/chat",
    b"wss://myapp.herokuapp.com",
    b"https://user@myapp.herokuapp.com",
    b"https://[broken",
    None,  # browsers always send one
])
async def test_any_other_origin_is_refused(heroku, conversation, alice, origin):
    assert not await gets_ready(conversation, alice, origin)


async def test_an_https_page_is_refused_when_the_request_came_over_http(heroku, conversation, alice):
    assert not await gets_ready(conversation, alice, b"https://myapp.herokuapp.com",
                                headers=[(b"x-forwarded-proto", b"http")])
    assert await gets_ready(conversation, alice, b"http://myapp.herokuapp.com", headers=[(b"x-forwarded-proto", b"http")])


async def test_a_host_outside_allowed_hosts_is_refused_even_with_its_own_origin(heroku, conversation, alice):
    assert not await gets_ready(conversation, alice, b"https://evil.example", host=b"evil.example")


async def test_without_a_proxy_header_setting_the_connections_own_scheme_counts(settings, conversation, alice):
    settings.SECURE_PROXY_SSL_HEADER = None
    # The header is then anyone's to send: it is not believed.
    assert not await gets_ready(conversation, alice, b"https://testserver", host=b"testserver")
    assert await gets_ready(conversation, alice, b"http://testserver", host=b"testserver")


@pytest.mark.parametrize("trusted, origin, accepted", [
    ("https://chat.example.com", b"https://chat.example.com", True),
    ("https://chat.example.com", b"http://chat.example.com", False),
    ("https://chat.example.com", b"https://other.example.com", False),
    ("https://chat.example.com:8443", b"https://chat.example.com:8443", True),
    ("https://chat.example.com", b"https://chat.example.com:443", True),
    ("https://*.example.com", b"https://a.example.com", True),
    ("https://*.example.com", b"https://example.com", True),
    ("https://*.example.com", b"http://a.example.com", False),
    ("https://*.example.com", b"https://a.example.org", False),
])
async def test_csrf_trusted_origins_are_honoured_as_django_honours_them(heroku, conversation, alice, trusted,
                                                                      origin, accepted):
    heroku.CSRF_TRUSTED_ORIGINS = [trusted]
    assert await gets_ready(conversation, alice, origin) is accepted


async def test_http_scopes_are_not_for_the_validator():
    from chat.socket.origins import SameOriginValidator

    with pytest.raises(ValueError):
        await SameOriginValidator(None)({"type": "http"}, None, None)


async def attempt(port, user, origin, host="localhost", headers=None):
    """A real handshake to 127.0.0.1:``port`` addressed to ``host``: the first frame's type, or the HTTP status
    of a refused handshake."""
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidStatus

    try:
        async with ws_connect(f"ws://{host}:{port}/ws/c/{user['conversation']}/", host="127.0.0.1", port=port,
                              origin=origin, additional_headers={"Cookie": user["cookie"], **(headers or {})},
                              open_timeout=10) as ws:
            return (await receive(ws))["type"]
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.fixture
def uvicorn_on_heroku_hosts(tmp_path, procs):
    """uvicorn with Heroku's ALLOWED_HOSTS default, reached as myapp.herokuapp.com through the router's header."""
    env = server_env(tmp_path, ALLOWED_HOSTS=".herokuapp.com")
    return procs.web("web", env).port, shell(env, SETUP)


def test_a_real_server_refuses_another_herokuapp_and_plain_http(uvicorn_on_heroku_hosts):
    port, user = uvicorn_on_heroku_hosts
    host, https = "myapp.herokuapp.com", {"X-Forwarded-Proto": "https"}
    assert asyncio.run(attempt(port, user, f"https://{host}:{port}", host, https)) == "ready"
    assert asyncio.run(attempt(port, user, "https://evil.herokuapp.com", host, https)) == 403
    assert asyncio.run(attempt(port, user, f"https://evil.herokuapp.com:{port}", host, https)) == 403
    assert asyncio.run(attempt(port, user, f"http://{host}:{port}", host, https)) == 403


@pytest.fixture
def runserver(tmp_path, procs):
    """``manage.py runserver`` on a laptop: SQLite, the demo model, no proxy."""
    env = server_env(tmp_path)
    port = free_port()
    proc = procs.start("runserver", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env)
    wait_for(lambda: port_open(port) or proc.poll() is not None, 60, "runserver")
    assert proc.poll() is None, proc.log_path.read_text()
    return port, shell(env, SETUP)


def test_runserver_on_localhost_accepts_its_own_page_and_refuses_others(runserver):
    port, user = runserver
    assert asyncio.run(attempt(port, user, f"http://localhost:{port}")) == "ready"
    assert asyncio.run(attempt(port, user, f"http://127.0.0.1:{port}", "127.0.0.1")) == "ready"
    assert asyncio.run(attempt(port, user, f"http://127.0.0.1:{port}")) == 403
    assert asyncio.run(attempt(port, user, "http://evil.example")) == 403
