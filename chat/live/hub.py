"""Who is watching what, in this process and across processes.

Frames go straight to sockets in this process (microseconds each). Other processes get them only when
one of their sockets watches the conversation, batched, through one channel per process:

* a process with a socket on a conversation joins that conversation's group (``Conversation.group_name``);
  a new turn is announced to the group once (``turn.started``), and there is nothing else sent to it;
* a process that hears of a turn running elsewhere asks its owner to be sent its frames (``turn.watch``);
  the owner answers with a snapshot, then relays frames to it at most every ``RELAY_INTERVAL``; an owner
  that has already finished says so (``turn.gone``) and the watcher sends the stored outcome instead.

Everything is keyed by the conversation's key (its public id's hex). The hub knows sockets, channels and
running turns (``RunningTurn``), never models: what a stored reply looks like comes from ``read_outcome``.
"""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol

from channels.layers import get_channel_layer

from chat.logs import describe

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


class RunningTurn(Protocol):
    """A reply being written in this process, as the hub sees it."""

    key: str  # the conversation's
    reply_id: str
    task: asyncio.Task | None

    def snapshot(self) -> str:
        """The encoded ``message`` frame of the reply so far."""

    def stop(self) -> None:
        """Stop writing; the text so far is kept."""

    async def add_remote(self, channel: str) -> None:
        """Send a snapshot to another process's ``channel``, then relay every frame there."""

    def remote_count(self) -> int:
        """How many other processes are being relayed to."""


class Hub:
    def __init__(self):
        self.layer = get_channel_layer()
        self.channel_name = None
        self.draining = False  # set on shutdown: no new turns start here
        # The stored outcome of a reply as an encoded ``message`` frame, or None: set by the turns package.
        self.read_outcome: Callable[[str], Awaitable[str | None]] | None = None
        self._watchers = {}  # key -> set of local sockets
        self._turns = {}  # key -> the RunningTurn of this process
        self._receiver = None
        self._companions = {}  # name -> a task that lives as long as the hub (keep_running)

    def stats(self):
        """Sizes of the per-conversation state this process holds; all zero once nobody watches and no reply
        runs (bench/soak.py checks that nothing outlives its last watcher)."""
        return {
            "conversations_watched": len(self._watchers),
            "sockets": sum(len(sockets) for sockets in self._watchers.values()),
            "turns": len(self._turns),
            "remote_watchers": sum(turn.remote_count() for turn in self._turns.values()),
        }

    # Local sockets --------------------------------------------------------------------------------

    async def watch(self, key, group, socket):
        """Send ``socket`` every frame of the conversation ``key`` (whose group is ``group``) from now on."""
        await self.start()
        sockets = self._watchers.setdefault(key, set())
        first = not sockets
        sockets.add(socket)
        if first:
            await self.layer.group_add(group, self.channel_name)

    async def unwatch(self, key, group, socket):
        sockets = self._watchers.get(key)
        if not sockets or socket not in sockets:
            return
        sockets.discard(socket)
        if not sockets:
            del self._watchers[key]
            await self.layer.group_discard(group, self.channel_name)

    async def send_local(self, key, text):
        """Send an encoded frame to every socket of this process watching the conversation."""
        for socket in list(self._watchers.get(key, ())):
            await socket.send_text(text)

    async def send_to_all(self, text):
        """Send an encoded frame to every socket of this process."""
        for key in list(self._watchers):
            await self.send_local(key, text)

    # Turns of this process -------------------------------------------------------------------------

    def register(self, turn):
        self._turns[turn.key] = turn

    def unregister(self, turn):
        if self._turns.get(turn.key) is turn:
            del self._turns[turn.key]

    def running(self):
        """The turns running in this process."""
        return list(self._turns.values())

    def snapshot(self, key, reply_id):
        """The live frame of ``reply_id`` if this process writes it, else None."""
        turn = self._turn(key, reply_id)
        return turn.snapshot() if turn is not None else None

    def stop(self, key):
        """Stop the conversation's turn running in this process; False when none runs here."""
        turn = self._turns.get(key)
        if turn is None:
            return False
        turn.stop()
        return True

    def _turn(self, key, reply_id):
        turn = self._turns.get(key)
        return turn if turn is not None and turn.reply_id == reply_id else None

    # Other processes -------------------------------------------------------------------------------

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

    async def publish(self, group, key, frames):
        """Send encoded frames to every socket on the conversation, in every process (this one included)."""
        await self.layer.group_send(group, {"type": "relay", "key": key, "frames": frames})

    # The process channel --------------------------------------------------------------------------

    async def start(self):
        if self._receiver is None:
            # The default prefix on purpose: channels_redis reads one Redis list per prefix under one lock per
            # process, so a second prefix would wait behind the consumers' receive (up to its 5 s BRPOP timeout).
            self.channel_name = await self.layer.new_channel()
            self._receiver = asyncio.create_task(self._receive_forever())

    def keep_running(self, name, run_forever):
        """Start ``run_forever()`` once per hub under ``name``; it is cancelled by ``close``."""
        if name not in self._companions:
            self._companions[name] = asyncio.create_task(run_forever(), name=f"hub-{name}")

    async def close(self):
        for task in (self._receiver, *self._companions.values()):
            if task is not None:
                task.cancel()
        self._receiver = None
        self._companions = {}

    async def _receive_forever(self):
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
                handler = getattr(self, "on_" + message.get("type", "").replace(".", "_"), None)
                if handler is not None:
                    await handler(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("hub: failed to handle a cross-process message %s", describe(exc))
                await asyncio.sleep(0.5)

    # One handler per cross-process message type ("turn.watch" -> on_turn_watch) -----------------------

    async def on_relay(self, message):
        for text in message["frames"]:
            await self.send_local(message["key"], text)

    async def on_turn_started(self, message):
        if message["owner"] != self.channel_name:
            await self.on_relay(message)
            await self.watch_remote(message["key"], message["reply"], message["owner"])

    async def on_turn_watch(self, message):
        turn = self._turn(message["key"], message["reply"])
        if turn is not None:
            await turn.add_remote(message["reply_to"])
        else:
            gone = {"type": "turn.gone", "key": message["key"], "reply": message["reply"]}
            await self.layer.send(message["reply_to"], gone)

    async def on_turn_gone(self, message):
        """The owner finished before our watch arrived: the database has the outcome."""
        frame = await self.read_outcome(message["reply"]) if self.read_outcome is not None else None
        if frame is not None:
            await self.send_local(message["key"], frame)

    async def on_turn_stop(self, message):
        turn = self._turn(message["key"], message["reply"])
        if turn is not None:
            turn.stop()

    async def on_conversation_title(self, message):
        await self.send_local(message["key"], message["frame"])
