"""/healthz: open to anyone, plain HTTP allowed, honest about the database and the channel layer."""

import asyncio
import json
import logging

import pytest

from chat.web import health

pytestmark = pytest.mark.django_db


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True and body["checks"]["channel_layer"]["ok"] is True
    assert all(0 <= check["ms"] < health.TIMEOUT * 1000 for check in body["checks"].values())


def test_each_check_reports_how_long_it_took_in_milliseconds(client, monkeypatch):
    async def slow():
        await asyncio.sleep(0.05)

    monkeypatch.setitem(health.CHECKS, "channel_layer", slow)
    checks = json.loads(client.get("/healthz").content)["checks"]
    assert 50 <= checks["channel_layer"]["ms"] < 1000


def test_needs_no_login_even_for_a_stranger(client, charlie):
    client.force_login(charlie)
    assert client.get("/healthz").status_code == 200


def test_plain_http_is_not_redirected_when_everything_else_is(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    assert client.get("/healthz/").status_code in (301, 404)  # only the exact path is exempt


async def _broken():
    raise ConnectionError("redis://secret-host:6379 refused")


async def _hanging():
    await asyncio.sleep(60)


@pytest.mark.parametrize("name", ["database", "channel_layer"])
def test_a_failing_check_is_a_503_naming_it_without_details(client, monkeypatch, caplog, name):
    monkeypatch.setitem(health.CHECKS, name, _broken)
    with caplog.at_level(logging.WARNING, logger="chat.web.health"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == "error" and body["checks"][name] == {"ok": False}
    other = ({"database", "channel_layer"} - {name}).pop()
    assert body["checks"][other]["ok"] is True
    assert b"secret-host" not in response.content
    assert f"check={name} ok=false error=ConnectionError" in caplog.text


def test_a_hanging_check_times_out(client, monkeypatch):
    monkeypatch.setattr(health, "TIMEOUT", 0.05)
    monkeypatch.setitem(health.CHECKS, "channel_layer", _hanging)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["channel_layer"] == {"ok": False}


def test_the_channel_layer_check_really_round_trips(monkeypatch):
    """A layer that accepts sends but returns someone else's message fails the check."""

    class WrongLayer:
        async def new_channel(self, prefix="specific"):
            return prefix + ".x"

        async def send(self, channel, message):
            pass

        async def receive(self, channel):
            return {"type": "healthz.ping", "nonce": "not-ours"}

    monkeypatch.setattr(health, "get_channel_layer", lambda: WrongLayer())
    with pytest.raises(RuntimeError):
        asyncio.run(health.check_channel_layer())


def test_the_database_check_reports_a_database_error(client, monkeypatch):
    from django.db import OperationalError

    def refuse():
        raise OperationalError("could not connect")

    monkeypatch.setattr(health, "_query_database", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["database"] == {"ok": False}


def test_the_channel_layer_check_passes_again_and_again_beside_a_running_hub():
    """The hub's endless read of the process channel (started by the first socket) does not starve the check."""
    from chat.live.hub import get_hub

    async def checks():
        hub = get_hub()
        await hub.start()
        try:
            for _ in range(3):
                await asyncio.wait_for(health.check_channel_layer(), health.TIMEOUT)
        finally:
            await hub.close()

    asyncio.run(checks())
