"""``/healthz``: is this process able to serve chats? For routers and uptime checkers, so no login needed.

It answers 200 when the database answers a query and the channel layer carries a message to a fresh channel
and back, 503 otherwise, with JSON naming the check that failed. Failure details go to the log, never into the
response: they can name hosts and users.
"""

import asyncio
import logging
import time
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from chat.logs import describe

log = logging.getLogger(__name__)

# Well under the router's 30 s, and short enough that an uptime checker sees a hang as a failure.
TIMEOUT = 3.0


def _query_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def check_database():
    await sync_to_async(_query_database)()


async def check_channel_layer():
    """A send/receive round trip on a new channel of this process's layer.

    The channel has the layer's default prefix, the hub's: channels_redis reads all of a process's channels of
    one prefix from one Redis key, under one lock per process, and whoever holds the lock hands each message to
    its channel. A channel of another prefix would wait for that lock behind the hub's blocking read (held for
    good once a socket has connected) and time out. The message is consumed, so no key stays behind in Redis.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "nonce": nonce})
    message = await layer.receive(channel)
    if message.get("nonce") != nonce:
        raise RuntimeError("the channel layer returned another message")


CHECKS = {"database": check_database, "channel_layer": check_channel_layer}


async def _run(name, check):
    started = time.monotonic()
    try:
        await asyncio.wait_for(check(), TIMEOUT)
    except Exception as exc:
        log.warning("healthz check=%s ok=false %s", name, describe(exc))
        return {"ok": False}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


@never_cache
async def healthz(request):
    names = list(CHECKS)
    results = await asyncio.gather(*(_run(name, CHECKS[name]) for name in names))
    checks = dict(zip(names, results))
    healthy = all(result["ok"] for result in results)
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)
