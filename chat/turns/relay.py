"""Frames of a reply for the other processes watching it, batched: at most one message per RELAY_INTERVAL each."""

import asyncio

from chat.live.hub import RELAY_INTERVAL


class Relay:
    """The channels of other processes watching one reply (``turn.watch``) and the frames owed to them."""

    def __init__(self, hub, key, spawn):
        self.hub, self.key = hub, key
        self._spawn = spawn  # runs a coroutine in the background, owned by the turn
        self.channels = set()
        self._frames = []

    async def add(self, channel, snapshot):
        """Relay to ``channel`` from now on, starting with the encoded ``snapshot``."""
        self.channels.add(channel)
        await self.hub.relay(channel, self.key, [snapshot])

    def push(self, frame):
        """Queue an encoded frame; the first one queued since the last batch schedules the next."""
        if not self.channels:
            return
        if not self._frames:
            asyncio.get_running_loop().call_later(RELAY_INTERVAL, self._spawn_flush)
        self._frames.append(frame)

    async def close(self, frame):
        """Send what is queued and the last ``frame`` at once: the reply is done."""
        self._frames.append(frame)
        await self.flush()

    def _spawn_flush(self):
        self._spawn(self.flush())

    async def flush(self):
        frames, self._frames = self._frames, []
        for channel in list(self.channels):
            if frames:
                await self.hub.relay(channel, self.key, frames)
