"""Helpers to talk to the conversation socket through the real ASGI stack (origin check, session auth)."""

import asyncio
import json
import uuid

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chat.live.hub import get_hub
from chatsite.asgi import application
from tests.servers import is_final

# The page's origin and the handshake's Host, as a browser on the test site sends them.
ORIGIN = b"http://testserver"
HOST = b"testserver"


def _session_cookie(user):
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(conversation_id, user=None, origin=ORIGIN, host=HOST, headers=()):
    """Connect with ``origin`` (None: no Origin header), ``host`` and any other ``headers``; returns
    ``(communicator, connected)``."""
    headers = [(b"host", host), *headers] + ([(b"origin", origin)] if origin else [])
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(_session_cookie)(user)))
    comm = WebsocketCommunicator(application, f"/ws/c/{conversation_id}/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    return comm, connected


async def next_frame(comm, timeout=5):
    """The next frame, skipping heartbeats."""
    while True:
        frame = json.loads(await comm.receive_from(timeout=timeout))
        if frame["type"] != "heartbeat":
            return frame


async def frames_until(comm, predicate, timeout=10):
    """Collect frames up to and including the first that matches ``predicate``."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await next_frame(comm, timeout=timeout)
            frames.append(frame)
            if predicate(frame):
                return frames


async def wait_for_turns():
    """Wait until every reply running in this event loop has finished."""
    hub = get_hub()
    for turn in hub.running():
        await asyncio.wait_for(asyncio.shield(turn.task), 10)


async def close_hub():
    await get_hub().close()


def send_frame(text, client_id=None):
    return {"type": "send", "text": text, "client_id": str(client_id or uuid.uuid4())}


async def ask(comm, text, client_id=None):
    """Send ``text`` as a new message; the frames up to and including the reply's final one."""
    await comm.send_json_to(send_frame(text, client_id))
    return await frames_until(comm, is_final)


async def stored(conversation):
    return await database_sync_to_async(lambda: list(conversation.messages.order_by("id")))()
