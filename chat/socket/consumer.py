"""The conversation socket: authenticate, authorise, translate frames (docs/protocol.md). No business logic."""

import json
import logging
import time
import uuid
from contextlib import asynccontextmanager

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404

from chat.live import frames
from chat.logs import describe
from chat.models import Message
from chat.ownership import get_conversation_for_user
from chat.socket import heartbeat
from chat.turns import lifecycle, options, records
from chat.uploads.attachments import MAX_PER_MESSAGE

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_FLOODING = 4429
RESTARTING = "The server is restarting; send again in a moment."
BUSY = "A reply is still being written. Wait for it or stop it first."


class ClientError(Exception):
    def __init__(self, code, message, client_id=None):
        super().__init__(message)
        self.code, self.message, self.client_id = code, message, client_id


class FrameBucket:
    """A token bucket per socket: ``burst`` frames at once, refilled at ``rate`` a second."""

    def __init__(self, burst, rate, clock=time.monotonic):
        self.burst, self.rate, self.clock = burst, rate, clock
        self.tokens, self.at = float(burst), clock()

    def take(self):
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _get_conversation(user, public_id):
    conversation = get_conversation_for_user(user, public_id)
    records.expire_stale_replies(conversation)
    return conversation, records.streaming_replies(conversation)


class ChatConsumer(AsyncWebsocketConsumer):
    # The hub listens on one channel per process (chat/live/hub.py); a channel per socket would only cost a read
    # task and a receive buffer per connection that nothing ever uses.
    channel_layer_alias = None
    conversation = None
    refused_in_a_row = 0

    async def connect(self):
        self.bucket = FrameBucket(settings.CHAT_SOCKET_BURST, settings.CHAT_SOCKET_RATE)
        user = self.scope["user"]
        # Accept first so the browser sees a close code it can act on instead of a bare failed handshake.
        await self.accept()
        if not user.is_authenticated:
            return await self.close(code=CLOSE_UNAUTHENTICATED)
        try:
            self.conversation, streaming = await database_sync_to_async(_get_conversation)(
                user, self.scope["url_route"]["kwargs"]["conversation_id"]
            )
        except Http404:
            return await self.close(code=CLOSE_NOT_FOUND)
        self.key = self.conversation.public_id.hex
        self.hub = await lifecycle.ready_hub()
        heartbeat.start(self.hub)
        await self.hub.watch(self.key, self.conversation.group_name, self)
        await self.send_frame(
            {"type": "ready", "conversation": str(self.conversation.public_id), "demo": settings.INFERENCE_DEMO,
             "model": options.model_id(self.conversation)}
        )
        for reply in streaming:
            await self._send_state(reply)

    async def disconnect(self, code):
        if self.conversation is not None:
            await self.hub.unwatch(self.key, self.conversation.group_name, self)

    async def receive(self, text_data=None, bytes_data=None):
        if self.conversation is None:
            return  # refused at connect and closing: nothing to answer
        if not await self._within_rate():
            return
        try:
            frame = self._decode(text_data)
            handler = getattr(self, f"handle_{frame['type']}", None)
            if handler is None:
                raise ClientError("unknown_type", f"Unknown frame type {frame['type']!r}.")
            await handler(frame)
        except ClientError as exc:
            await self.send_frame({"type": "error", "code": exc.code, "message": exc.message, "client_id": exc.client_id})

    async def _within_rate(self):
        """Charge one frame to the bucket; refuse it when empty, and close a socket that keeps flooding."""
        if self.bucket.take():
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        if self.refused_in_a_row == settings.CHAT_SOCKET_FLOOD_CLOSE + 1:
            # Answering a flood frame by frame would double it: past the limit the socket just goes.
            await self.close(code=CLOSE_FLOODING)
        elif self.refused_in_a_row <= settings.CHAT_SOCKET_FLOOD_CLOSE:
            await self.send_frame({"type": "error", "code": "rate_limited", "client_id": None,
                                   "message": "Too many messages at once; slow down and try again."})
        return False

    def _decode(self, text_data):
        if text_data is None or len(text_data) > settings.CHAT_MAX_FRAME_BYTES:
            raise ClientError("invalid", "Frames must be JSON text of a reasonable size.")
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than the decoder's stack, which no real frame needs.
            raise ClientError("invalid", "Frames must be JSON objects.") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ClientError("invalid", "Frames must be JSON objects with a type.")
        return frame

    # Client frames -------------------------------------------------------------------------------

    async def handle_send(self, frame):
        client_id = _client_id(frame)
        attachment_ids = _attachment_ids(frame.get("attachments"), client_id)
        text = _text(frame, client_id, allow_empty=bool(attachment_ids))
        async with _refusals(client_id):
            started = await lifecycle.start_turn(
                self.conversation, text=text, client_id=client_id, attachment_ids=attachment_ids
            )
        await self._acknowledge_resend(*started)

    async def handle_edit(self, frame):
        client_id = _client_id(frame)
        message_id = _message_id(frame, client_id)
        text = _text(frame, client_id)
        async with _refusals(client_id):
            started = await lifecycle.start_turn(self.conversation, text=text, client_id=client_id, edit=message_id)
        await self._acknowledge_resend(*started)

    async def handle_regenerate(self, frame):
        client_id = _client_id(frame)
        message_id = _message_id(frame, client_id)
        async with _refusals(client_id):
            started = await lifecycle.regenerate(self.conversation, reply_id=message_id, client_id=client_id)
        await self._acknowledge_resend(*started)

    async def _acknowledge_resend(self, message, created):
        """A resend of a stored frame (same client_id) is acknowledged again; nothing was started."""
        if not created:
            await self.send_text(frames.message_frame(message))

    async def handle_branch(self, frame):
        message_id = _message_id(frame, None)
        async with _refusals(None):
            await lifecycle.show_version(self.conversation, message_id)

    async def handle_stop(self, frame):
        if self.hub.stop(self.key):
            return
        for reply in await database_sync_to_async(records.streaming_replies)(self.conversation):
            await self.hub.stop_remote(self.key, str(reply.public_id), reply.worker)

    async def handle_sync(self, frame):
        raw = frame.get("ids")
        ids = [i for i in map(_parse_uuid, raw[:50]) if i is not None] if isinstance(raw, list) else []
        if not ids:
            raise ClientError("invalid", "sync needs a list of message ids.")
        messages = await database_sync_to_async(records.messages_by_ids)(self.conversation, ids)
        for message in messages:
            await self._send_state(message)

    async def handle_history(self, frame):
        await self.send_text(await database_sync_to_async(lifecycle.history_frame)(self.conversation))

    async def handle_ping(self, frame):
        await self.send_frame({"type": "pong"})

    # Sending ---------------------------------------------------------------------------------------

    async def _send_state(self, message):
        """The current state of a message: live from a local turn, relayed from a remote one, or stored."""
        snapshot = self.hub.snapshot(self.key, str(message.public_id))
        if snapshot is not None:
            return await self.send_text(snapshot)
        await self.send_text(frames.message_frame(message))
        if message.status == Message.Status.STREAMING:
            await self.hub.watch_remote(self.key, str(message.public_id), message.worker)

    async def send_frame(self, frame):
        await self.send_text(frames.encode(frame))

    async def send_text(self, text):
        """Send an encoded frame; a socket that is going away is simply skipped."""
        try:
            await self.send(text_data=text)
        except Exception as exc:
            log.debug("dropping a frame for a closed socket %s", describe(exc))


@asynccontextmanager
async def _refusals(client_id):
    """Turn the reasons a turn cannot start into the error frames the client shows (docs/protocol.md)."""
    key = str(client_id) if client_id else None
    try:
        yield
    except records.Busy:
        raise ClientError("busy", BUSY, key) from None
    except records.NotFound:
        raise ClientError("invalid", "That message is not in this conversation, or can't be used for this.", key) from None
    except records.AttachmentUnavailable as exc:
        raise ClientError("invalid", str(exc), key) from None
    except records.QuotaExceeded as exc:
        raise ClientError("quota", exc.message, key) from None
    except lifecycle.ShuttingDown:
        raise ClientError("restarting", RESTARTING, key) from None


def _client_id(frame):
    client_id = _parse_uuid(frame.get("client_id"))
    if client_id is None:
        raise ClientError("invalid", "A message needs a client_id (a UUID).")
    return client_id


def _message_id(frame, client_id):
    message_id = _parse_uuid(frame.get("id"))
    if message_id is None:
        raise ClientError("invalid", "This frame needs the id of a message.", str(client_id) if client_id else None)
    return message_id


def _text(frame, client_id, allow_empty=False):
    text = frame.get("text")
    if not isinstance(text, str) or not (text.strip() or allow_empty):
        raise ClientError("invalid", "A message needs some text or an image.", str(client_id))
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ClientError(
            "too_long", f"Messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS:,} characters.", str(client_id)
        )
    return text


def _attachment_ids(raw, client_id):
    """The ``attachments`` of a send frame: absent, or a list of at most MAX_PER_MESSAGE distinct UUIDs."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ClientError("invalid", "attachments must be a list of image ids.", str(client_id))
    if len(raw) > MAX_PER_MESSAGE:
        raise ClientError("invalid", f"A message can carry at most {MAX_PER_MESSAGE} images.", str(client_id))
    ids = [_parse_uuid(item) if isinstance(item, str) else None for item in raw]
    if None in ids or len(set(ids)) != len(ids):
        raise ClientError("invalid", "attachments must be a list of distinct image ids.", str(client_id))
    return ids


def _parse_uuid(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
