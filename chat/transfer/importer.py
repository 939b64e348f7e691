"""Reading an export document (chat/transfer/exporter.py, version 1 or 2) back in as new conversations of the person importing it.

Nothing in the file is trusted: owners and timestamps are ignored, ids only link a message to its parent within
the file (the copies get new ones), every field is type- and length-checked, and an image is re-linked only when
its bytes are already stored AND the importer owns an attachment with them (a sha256 alone must not grant access
to someone else's image). Images that fail that test are dropped and reported in the notes. Either the whole
document is valid and imported, or nothing is created.

Every version of every message is imported: the tree is rebuilt from ``parent`` and ``selected``, so the copy
shows what the original showed (a version 1 file is one line of messages). A file's ``path`` is not read: it
follows from the tree.
"""

import json
import re

from django.db import transaction

from chat.models import TITLE_MAX, Attachment, Conversation, ImageBlob, Message
from chat.transfer import exporter

MAX_BYTES = 5 * 1024 * 1024
MAX_CONVERSATIONS = 50
MAX_MESSAGES = 2000
MAX_CONTENT_CHARS = 200_000
MAX_ATTACHMENTS = 10
MAX_ID_CHARS = 100
MAX_TOOL_CALLS = 50
MAX_TOOL_RESULT_CHARS = 100_000
READABLE_VERSIONS = (1, exporter.VERSION)
TOO_LARGE = f"The file is larger than {MAX_BYTES // 1024 // 1024} MB."
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LIMITS = {"error": 2000, "model": 100, "finish_reason": 32}
_STEP_LIMITS = {"id": 200, "name": 100, "arguments": 20_000}


class ImportRejected(Exception):
    """The file is not an export this app can read; the message says why, safe to show."""


def parse(data):
    """The validated document of ``data`` (bytes): a list of conversations, each ``(title, [message dicts])``.

    A message's ``parent`` is the index of an earlier message of its list, or None for a first message.
    """
    if len(data) > MAX_BYTES:
        raise ImportRejected(TOO_LARGE)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ImportRejected("The file is not valid JSON.") from None
    if not isinstance(document, dict) or document.get("format") != exporter.FORMAT:
        raise ImportRejected(f'The file is not a conversation export (expected "format": "{exporter.FORMAT}").')
    version = document.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ImportRejected(f"Only version {' and '.join(map(str, READABLE_VERSIONS))} exports can be imported.")
    conversations = document.get("conversations")
    if not isinstance(conversations, list) or not 1 <= len(conversations) <= MAX_CONVERSATIONS:
        raise ImportRejected(f'"conversations" must list 1 to {MAX_CONVERSATIONS} conversations.')
    return [_conversation(item, n, version) for n, item in enumerate(conversations, 1)]


def _conversation(item, n, version):
    where = f"Conversation {n}"
    if not isinstance(item, dict):
        raise ImportRejected(f"{where} is not an object.")
    title = _text(item.get("title", ""), TITLE_MAX, f"{where}: title")
    messages = item.get("messages")
    if not isinstance(messages, list) or len(messages) > MAX_MESSAGES:
        raise ImportRejected(f'{where}: "messages" must be a list of at most {MAX_MESSAGES} messages.')
    parsed = [_message(message, f"{where}, message {i}") for i, message in enumerate(messages, 1)]
    links = _tree(messages, where) if version >= 2 else _line(len(messages))
    for fields, (parent, selected) in zip(parsed, links):
        fields.update(parent=parent, selected=selected)
    return " ".join(title.split()), parsed


def _line(count):
    """Version 1: each message answers the one before it."""
    return [(n - 1 if n else None, True) for n in range(count)]


def _tree(messages, where):
    """``(parent index or None, selected)`` of each message, from the file's ids.

    A parent must come before its child, as the export lists them: that also rules out cycles.
    """
    seen, links = {}, []
    for n, item in enumerate(messages):
        at = f"{where}, message {n + 1}"
        key, parent, selected = item.get("id"), item.get("parent"), item.get("selected", True)
        if not isinstance(key, str) or not 0 < len(key) <= MAX_ID_CHARS or key in seen:
            raise ImportRejected(f"{at}: id must be 1 to {MAX_ID_CHARS} characters, unique in its conversation.")
        if parent is not None and (not isinstance(parent, str) or parent not in seen):
            raise ImportRejected(f"{at}: parent must be null or the id of an earlier message.")
        if not isinstance(selected, bool):
            raise ImportRejected(f"{at}: selected must be true or false.")
        seen[key] = n
        links.append((seen.get(parent), selected))
    return links


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
    tool_calls = item.get("tool_calls") or []
    if not isinstance(tool_calls, list) or len(tool_calls) > MAX_TOOL_CALLS:
        raise ImportRejected(f"{where}: tool_calls must be a list of at most {MAX_TOOL_CALLS}.")
    return {
        "role": role,
        # A reply exported mid-stream has no writer here: it arrives as interrupted, like after a restart.
        "status": Message.Status.INTERRUPTED if status == Message.Status.STREAMING else status,
        "content": _text(item.get("content", ""), MAX_CONTENT_CHARS, f"{where}: content"),
        "reasoning": _text(item.get("reasoning") or "", MAX_CONTENT_CHARS, f"{where}: reasoning"),
        "tool_calls": [_tool_call(step, f"{where}, tool call {i}") for i, step in enumerate(tool_calls, 1)],
        **{name: _text(item.get(name) or "", limit, f"{where}: {name}") for name, limit in _LIMITS.items()},
        "prompt_tokens": _count(usage.get("prompt_tokens"), f"{where}: prompt_tokens"),
        "completion_tokens": _count(usage.get("completion_tokens"), f"{where}: completion_tokens"),
        "attachments": [_attachment(a, f"{where}, image {i}") for i, a in enumerate(attachments, 1)],
    }


def _tool_call(item, where):
    if not isinstance(item, dict):
        raise ImportRejected(f"{where} is not an object.")
    step = {name: _text(item.get(name, ""), limit, f"{where}: {name}") for name, limit in _STEP_LIMITS.items()}
    if not step["name"]:
        raise ImportRejected(f"{where}: name must not be empty.")
    result, is_error = item.get("result"), item.get("is_error", False)
    if not isinstance(is_error, bool):
        raise ImportRejected(f"{where}: is_error must be true or false.")
    # An imported reply is never streaming, so each of its steps is over.
    return {
        **step,
        "result": None if result is None else _text(result, MAX_TOOL_RESULT_CHARS, f"{where}: result"),
        "is_error": is_error,
        "status": "done",
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
        stored = []
        for fields in messages:
            message = _store(conv, fields, stored)
            stored.append(message)
            for image in fields["attachments"]:
                blob = usable.get(image["sha256"])
                if blob is None:
                    dropped += 1
                    continue
                Attachment.objects.create(owner=user, message=message, blob=blob, filename=image["filename"])
        created.append(conv)
    if not dropped:
        return created, []
    return created, [f"{dropped} image(s) were not imported: only images you uploaded here can be re-linked."]


def _store(conv, fields, stored):
    """Save one parsed message under its parent, one of the ``stored`` messages before it."""
    columns = {name: value for name, value in fields.items() if name not in ("attachments", "parent")}
    parent = stored[fields["parent"]] if fields["parent"] is not None else None
    message = Message(conversation=conv, parent=parent, **columns)
    message.save(root=parent is None)
    return message


def _usable_blobs(user, parsed):
    wanted = {image["sha256"] for _, messages in parsed for m in messages for image in m["attachments"]}
    if not wanted:
        return {}
    owned = Attachment.objects.filter(owner=user, blob__sha256__in=wanted).values("blob_id")
    return {blob.sha256: blob for blob in ImageBlob.objects.filter(sha256__in=wanted, pk__in=owned).defer("data")}
