"""Who is watching what, in this process and across processes.

Frames go straight to sockets in this process (microseconds each). Other processes get them only when
one of their sockets watches the conversation, batched, through one channel per process:

* a process with a socket on a conversation joins that conversation's group (``Conversation.group_name``);
  a new turn is announced to the group once (``turn.started``), and there is nothing else sent to it;
* a process that hears of a turn running elsewhere asks its owner to be sent its frames (``turn.watch``);
  the owner answers with a snapshot, then relays frames to it at most every ``RELAY_INTERVAL``.
"""

import asyncio
import json
import logging
import weakref

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

RELAY_INTERVAL = 0.1

_hubs = weakref.WeakKeyDictionary()


def get_hub():
    """The hub of the running event loop (one per process in production; tests use many loops)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


def encode(frame):
    return json.dumps(frame, separators=(",", ":"))


class Hub:
    def __init__(self):
        self.layer = get_channel_layer()
        self.watchers = {}  # conversation key -> set of local sockets
        self.turns = {}  # conversation key -> the Turn running in this process
        self.channel_name = None
        self.draining = False  # set on shutdown: no new turns start here
        self._receiver = None
        self._heartbeat = None
        self._sweeper = None

    def stats(self):
        """Sizes of the per-conversation state this process holds; all zero once nobody watches and no reply
        runs (bench/soak.py checks that nothing outlives its last watcher)."""
        return {
            "conversations_watched": len(self.watchers),
            "sockets": sum(len(sockets) for sockets in self.watchers.values()),
            "turns": len(self.turns),
            "remote_watchers": sum(len(getattr(turn, "remote", ())) for turn in self.turns.values()),
        }

    # Local sockets --------------------------------------------------------------------------------

    async def attach(self, socket, key, group):
        """Register a socket; returns the local turn of the conversation, if any, for its snapshot."""
        await self.start()
        sockets = self.watchers.setdefault(key, set())
        first = not sockets
        sockets.add(socket)
        if first:
            await self.layer.group_add(group, self.channel_name)
        return self.turns.get(key)

    async def detach(self, socket, key, group):
        sockets = self.watchers.get(key)
        if not sockets or socket not in sockets:
            return
        sockets.discard(socket)
        if not sockets:
            del self.watchers[key]
            await self.layer.group_discard(group, self.channel_name)

    async def send_local(self, key, text):
        """Send an encoded frame to every socket of this process watching the conversation."""
        for socket in list(self.watchers.get(key, ())):
            await socket.send_text(text)

    # Turns ----------------------------------------------------------------------------------------

    def register_turn(self, key, turn):
        self.turns[key] = turn

    def unregister_turn(self, key, turn):
        if self.turns.get(key) is turn:
            del self.turns[key]

    async def announce_turn(self, group, key, reply_id, frames):
        """Tell processes watching the conversation that this process now writes a reply."""
        await self.layer.group_send(
            group,
            {"type": "turn.started", "key": key, "reply": reply_id, "owner": self.channel_name, "frames": frames},
        )

    async def watch_remote(self, key, reply_id, owner):
        """Ask the process writing a reply to relay its frames here."""
        if owner and owner != self.channel_name:
            await self.layer.send(
                owner, {"type": "turn.watch", "key": key, "reply": reply_id, "reply_to": self.channel_name}
            )

    async def stop_remote(self, key, reply_id, owner):
        if owner and owner != self.channel_name:
            await self.layer.send(owner, {"type": "turn.stop", "key": key, "reply": reply_id})

    async def relay(self, channel, key, frames):
        await self.layer.send(channel, {"type": "relay", "key": key, "frames": frames})

    # The process channel --------------------------------------------------------------------------

    async def start(self):
        self.start_sweeper()
        if self._receiver is None:
            # The default prefix on purpose: channels_redis reads one Redis list per prefix under one lock per
            # process, so a second prefix would wait behind the consumers' receive (up to its 5 s BRPOP timeout).
            self.channel_name = await self.layer.new_channel()
            self._receiver = asyncio.create_task(self._receive_forever())
            self._heartbeat = asyncio.create_task(self._heartbeat_forever())

    def start_sweeper(self):
        """Look for replies left streaming by dead processes; started with the server (lifespan) or first use."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self):
        for task in (self._receiver, self._heartbeat, self._sweeper):
            if task is not None:
                task.cancel()
        self._receiver = self._heartbeat = self._sweeper = None

    async def _receive_forever(self):
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
                await self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub: failed to handle a cross-process message")
                await asyncio.sleep(0.5)

    async def _dispatch(self, message):
        kind, key = message.get("type"), message.get("key")
        turn = self.turns.get(key)
        if kind == "relay":
            for text in message["frames"]:
                await self.send_local(key, text)
        elif kind == "turn.started" and message["owner"] != self.channel_name:
            for text in message["frames"]:
                await self.send_local(key, text)
            await self.watch_remote(key, message["reply"], message["owner"])
        elif kind == "turn.watch" and turn is not None and turn.reply_id == message["reply"]:
            await turn.add_remote(message["reply_to"])
        elif kind == "turn.watch":
            await self.layer.send(message["reply_to"], {"type": "turn.gone", "key": key, "reply": message["reply"]})
        elif kind == "turn.gone":
            await self._send_stored(key, message["reply"])
        elif kind == "turn.stop" and turn is not None and turn.reply_id == message["reply"]:
            turn.stop()
        elif kind == "conversation.title":
            await self.send_local(key, message["frame"])

    async def _send_stored(self, key, reply_id):
        """The owner finished before our watch arrived: the database has the outcome."""
        from chat.models import Message

        reply = await database_sync_to_async(Message.objects.filter(public_id=reply_id).first)()
        if reply is not None:
            await self.send_local(key, encode({"type": "message", "message": reply.as_frame()}))

    async def _sweep_forever(self):
        from django.conf import settings

        while True:
            await asyncio.sleep(settings.CHAT_SWEEP_INTERVAL)
            try:
                await self.sweep()
            except Exception:
                log.warning("hub: stale-reply sweep failed; trying again next interval", exc_info=True)

    async def sweep(self):
        """Finish replies whose writer died and show the outcome to every process watching them (through the
        conversation's group, which holds exactly the processes with a socket on it, this one included)."""
        from chat.turns import records

        for reply in await database_sync_to_async(records.sweep_stale_replies)():
            log.info("sweep: reply=%s marked interrupted (no heartbeat)", reply.public_id)
            frame = encode({"type": "message", "message": reply.as_frame()})
            key = reply.conversation.public_id.hex
            await self.layer.group_send(reply.conversation.group_name, {"type": "relay", "key": key, "frames": [frame]})

    async def _heartbeat_forever(self):
        from django.conf import settings

        text = encode({"type": "heartbeat"})
        while True:
            await asyncio.sleep(settings.CHAT_HEARTBEAT_INTERVAL)
            for key in list(self.watchers):
                await self.send_local(key, text)
