"""A turn's writes to the database: its partial text on a timer (never per token), its outcome once."""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from chat.logs import describe
from chat.turns import records

log = logging.getLogger("chat.turn")

# Without text to save, a streaming reply still proves its writer is alive this often.
HEARTBEAT_EVERY = 10.0
FINAL_ATTEMPTS = 4


class Saver:
    """Saves the ``stream`` (chat/turns/stream.py) of the reply row ``reply_pk``."""

    def __init__(self, reply_pk, reply_id, stream):
        self.reply_pk, self.reply_id, self.stream = reply_pk, reply_id, stream

    async def flush_forever(self):
        """Save the partial text every CHAT_FLUSH_INTERVAL when it changed, and at least every HEARTBEAT_EVERY
        seconds as a heartbeat; a failed flush is retried at the next tick. Runs until cancelled."""
        saved, saved_at = None, time.monotonic()
        while True:
            await asyncio.sleep(settings.CHAT_FLUSH_INTERVAL)
            progress = self.stream.progress()
            if progress == saved and time.monotonic() - saved_at < HEARTBEAT_EVERY:
                continue
            try:
                await database_sync_to_async(records.flush_partial)(self.reply_pk, *self.stream.saved_fields())
            except Exception as exc:
                log.warning("flush failed reply=%s %s; retrying at the next tick", self.reply_id, describe(exc))
                continue
            saved, saved_at = progress, time.monotonic()

    async def save_outcome(self, **outcome):
        """Record the outcome once (``outcome`` as ``records.finish_reply`` takes it, less the stream's text,
        thinking and steps); a database hiccup gets retried rather than losing the reply.

        Returns ``(reply, usage_totals)``: the stored reply and the conversation's new token totals.
        """
        for attempt in range(FINAL_ATTEMPTS):
            try:
                text, reasoning, steps = self.stream.saved_fields()
                return await database_sync_to_async(_finish_records)(
                    self.reply_pk, content=text, reasoning=reasoning, tool_calls=steps,
                    first_token_at=self.stream.first_token_at, **outcome,
                )
            except Exception as exc:
                if attempt == FINAL_ATTEMPTS - 1:
                    raise
                log.warning("final save failed reply=%s %s; retrying", self.reply_id, describe(exc))
                await asyncio.sleep(0.5 * 2**attempt)


def _finish_records(reply_pk, **outcome):
    """Save the outcome and read the conversation's new token totals, in one trip to the database thread."""
    reply = records.finish_reply(reply_pk, **outcome)
    return reply, records.usage_totals(reply.conversation)
