"""Replies left ``streaming`` by a process that died: found by their stale heartbeat, finished as interrupted.

Every process sweeps (started with the server by chat/socket/lifespan.py, or on first use); a reply is
finished by exactly one of them (records.sweep_stale_replies).
"""

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from chat.live import frames
from chat.live.hub import get_hub
from chat.logs import describe
from chat.turns import records

log = logging.getLogger(__name__)


def start(hub):
    """Sweep every CHAT_SWEEP_INTERVAL for as long as ``hub`` runs (once per hub, however often called)."""
    hub.keep_running("sweeper", _sweep_forever)


async def _sweep_forever():
    while True:
        await asyncio.sleep(settings.CHAT_SWEEP_INTERVAL)
        try:
            await sweep()
        except Exception as exc:
            log.warning("sweep: stale-reply sweep failed %s; trying again next interval", describe(exc))


async def sweep():
    """Finish replies whose writer died and show the outcome to every process watching them (through the
    conversation's group, which holds exactly the processes with a socket on it, this one included)."""
    hub = get_hub()
    for reply in await database_sync_to_async(records.sweep_stale_replies)():
        log.info("sweep: reply=%s marked interrupted (no heartbeat)", reply.public_id)
        conversation = reply.conversation
        await hub.publish(conversation.group_name, conversation.public_id.hex, [frames.message_frame(reply)])
