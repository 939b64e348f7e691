"""Reading an export document (chat/exports.py, version 1) back in as new conversations of the importer.

Nothing in the file is trusted: ids, owners and timestamps are ignored, every field is type- and length-checked,
and an image is re-linked only when its bytes are already stored AND the importer owns an attachment with them
(a sha256 alone must not grant access to someone else's image). Images that fail that test are dropped and
reported in the notes. Either the whole document is valid and imported, or nothing is created.
"""

import json
import re

from django.db import transaction

from . import exports
from .models import TITLE_MAX, Attachment, Conversation, ImageBlob, Message

MAX_BYTES = 5 * 1024 * 1024
MAX_CONVERSATIONS = 50
MAX_MESSAGES = 2000
MAX_CONTENT_CHARS = 200_000
MAX_ATTACHMENTS = 10
TOO_LARGE = f"The file is larger than {MAX_BYTES // 1024 // 1024} MB."
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LIMITS = {"error": 2000, "model": 100, "finish_reason": 32}


class ImportRejected(Exception):
    """The file is not an export this app can read; the message says why, safe to show."""


def parse(data):
    """The validated document of ``data`` (bytes): a list of conversations, each ``(title, [message dicts])``."""
    if len(data) > MAX_BYTES:
        raise ImportRejected(TOO_LARGE)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ImportRejected("The file is not valid JSON.") from None
    if not isinstance(document, dict) or document.get("format") != exports.FORMAT:
        raise ImportRejected(f'The file is not a conversation export (expected "format": "{exports.FORMAT}").')
    if document.get("version") != exports.VERSION:
        raise ImportRejected(f"Only version {exports.VERSION} exports can be imported.")
    conversations = document.get("conversations")
    if not isinstance(conversations, list) or not 1 <= len(conversations) <= MAX_CONVERSATIONS:
        raise ImportRejected(f'"conversations" must list 1 to {MAX_CONVERSATIONS} conversations.')
    return [_conversation(item, n) for n, item in enumerate(conversations, 1)]


def _conversation(item, n):
    where = f"Conversation {n}"
    if not isinstance(item, dict):
        raise ImportRejected(f"{where} is not an object.")
    title = _text(item.get("title", ""), TITLE_MAX, f"{where}: title")
    messages = item.get("messages")
    if not isinstance(messages, list) or len(messages) > MAX_MESSAGES:
        raise ImportRejected(f'{where}: "messages" must be a list of at most {MAX_MESSAGES} messages.')
    parsed = [_message(message, f"{where}, message {i}") for i, message in enumerate(messages, 1)]
    return " ".join(title.split()), parsed


def _message(item, where):
    if not isinstance(item, dict):
        raise ImportRejected(f"{where} is not an object.")
    role = item.get("role")
    if role not in Message.Role.values:
        raise ImportRejected(f'{where}: role must be "user" or "assistant".')
    status = item.get("status", Message.Status.COMPLETE)
    if status not in Message.Status.values:
        raise ImportRejected(f"{where}: unknown status {str(status)[:20]!r}.")
    usage = item.get("usage") or {}
    if not isinstance(usage, dict):
        raise ImportRejected(f"{where}: usage must be an object.")
    attachments = item.get("attachments") or []
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
        raise ImportRejected(f"{where}: attachments must be a list of at most {MAX_ATTACHMENTS}.")
    return {
        "role": role,
        # A reply exported mid-stream has no writer here: it arrives as interrupted, like after a restart.
        "status": Message.Status.INTERRUPTED if status == Message.Status.STREAMING else status,
        "content": _text(item.get("content", ""), MAX_CONTENT_CHARS, f"{where}: content"),
        **{name: _text(item.get(name) or "", limit, f"{where}: {name}") for name, limit in _LIMITS.items()},
        "prompt_tokens": _count(usage.get("prompt_tokens"), f"{where}: prompt_tokens"),
        "completion_tokens": _count(usage.get("completion_tokens"), f"{where}: completion_tokens"),
        "attachments": [_attachment(a, f"{where}, image {i}") for i, a in enumerate(attachments, 1)],
    }


def _attachment(item, where):
    if not isinstance(item, dict) or not isinstance(item.get("sha256"), str) or not _SHA256.fullmatch(item["sha256"]):
        raise ImportRejected(f"{where}: sha256 must be 64 lowercase hex digits.")
    return {"sha256": item["sha256"], "filename": _text(item.get("filename") or "", 255, f"{where}: filename")}


def _text(value, limit, where):
    if not isinstance(value, str):
        raise ImportRejected(f"{where} must be a string.")
    if len(value) > limit or "\x00" in value:
        raise ImportRejected(f"{where} is longer than {limit} characters or holds a NUL character.")
    return value


def _count(value, where):
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= 10**9:
        raise ImportRejected(f"{where} must be a whole number or null.")
    return value


@transaction.atomic
def create(user, parsed):
    """Store parsed conversations as ``user``'s; returns ``(conversations, notes)`` (notes say what was dropped)."""
    usable = _usable_blobs(user, parsed)
    created, dropped = [], 0
    for title, messages in parsed:
        conv = Conversation.objects.create(owner=user, title=title or "Imported chat")
        for fields in messages:
            images = fields.pop("attachments")
            message = Message.objects.create(conversation=conv, **fields)
            for image in images:
                blob = usable.get(image["sha256"])
                if blob is None:
                    dropped += 1
                    continue
                Attachment.objects.create(owner=user, message=message, blob=blob, filename=image["filename"])
        created.append(conv)
    if not dropped:
        return created, []
    return created, [f"{dropped} image(s) were not imported: only images you uploaded here can be re-linked."]


def _usable_blobs(user, parsed):
    wanted = {image["sha256"] for _, messages in parsed for m in messages for image in m["attachments"]}
    if not wanted:
        return {}
    owned = Attachment.objects.filter(owner=user, blob__sha256__in=wanted).values("blob_id")
    return {blob.sha256: blob for blob in ImageBlob.objects.filter(sha256__in=wanted, pk__in=owned).defer("data")}
