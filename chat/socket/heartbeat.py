"""A frame to every socket of the process every CHAT_HEARTBEAT_INTERVAL, so Heroku's router (55 s idle cut)
never closes a socket while the model is thinking (docs/protocol.md, ``heartbeat``)."""

import asyncio

from django.conf import settings

from chat.live.frames import encode


def start(hub):
    """Beat for as long as ``hub`` runs (once per hub, however often called)."""
    hub.keep_running("heartbeat", lambda: _beat_forever(hub))


async def _beat_forever(hub):
    text = encode({"type": "heartbeat"})
    while True:
        await asyncio.sleep(settings.CHAT_HEARTBEAT_INTERVAL)
        await hub.send_to_all(text)
