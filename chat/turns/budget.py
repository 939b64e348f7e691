"""A turn's share of the add-on's upstream budget (chat/inference/ratelimit.py), one reservation a request."""

import logging

from chat.inference import ratelimit
from chat.logs import describe

log = logging.getLogger("chat.turn")


class Reservation:
    """Tokens reserved for one request of the reply ``reply_id``; ``on_wait(seconds)`` is awaited while queued.

    Queueing happens before any request, while the add-on's minute is spent by this or any other process: a
    stop while queued cancels the wait and nothing is sent.
    """

    def __init__(self, reply_id, messages, max_tokens, on_wait):
        self.reply_id = reply_id
        self.estimate = ratelimit.estimate_tokens(messages, max_tokens)
        self._on_wait = on_wait
        self._budget = ratelimit.get_budget()
        self._held = None

    async def acquire(self):
        self._held = await self._budget.acquire(self.estimate, on_wait=self._on_wait)

    async def retry(self):
        """The refused attempt counted as a request but used no tokens; the retry is a request of its own."""
        await self.settle(0)
        await self.acquire()

    async def settle(self, used):
        """Replace the estimate with the reported usage; the reply matters more than the bookkeeping."""
        try:
            await self._budget.settle(self._held, used)
        except Exception as exc:
            log.warning("budget settle failed reply=%s %s", self.reply_id, describe(exc))
