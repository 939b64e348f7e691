"""Conversations as portable documents: JSON (for machines, and import) and Markdown (for people).

The JSON shape, version 2. The import (chat/transfer/importer.py) reads exactly this, so change it only by bumping
``version``::

    {
      "format": "claude-chat.conversations",
      "version": 2,
      "exported_at": "<ISO 8601>",
      "conversations": [
        {
          "id": "<conversation uuid>",
          "title": "<string, may be empty>",
          "owner": "<username>",
          "created_at": "<ISO 8601>",
          "updated_at": "<ISO 8601>",
          "path": ["<message uuid>", …],
          "messages": [
            {
              "id": "<message uuid>",
              "parent": "<message uuid>" | null,
              "selected": true | false,
              "role": "user" | "assistant",
              "content": "<Markdown source, as stored>",
              "reasoning": "<the model's extended thinking, empty when none>",
              "tool_calls": [
                {"id": "<call id>", "name": "<tool name>", "arguments": "<JSON text, as the model wrote it>",
                 "result": "<text>" | null, "is_error": bool}
              ],
              "status": "streaming" | "complete" | "stopped" | "error" | "interrupted",
              "error": "<user-safe error text, empty when none>",
              "model": "<model id, empty on user messages>",
              "finish_reason": "<stop | length | tool_calls | … or empty>",
              "usage": {"prompt_tokens": int|null, "completion_tokens": int|null, "total_tokens": int|null},
              "timings": {"created_at": "<ISO>", "first_token_at": "<ISO>"|null, "finished_at": "<ISO>"|null,
                          "time_to_first_token": seconds|null, "duration": seconds|null},
              "attachments": [
                {"id": "<attachment uuid>", "sha256": "<hex of the stored image bytes>",
                 "url": "<where the image is served>"|null, "filename": "<string>",
                 "content_type": "image/…", "width": int, "height": int}
              ]
            }
          ]
        }
      ]
    }

A conversation is a tree (chat/tree.py): editing a message or regenerating a reply adds a version of it,
a sibling under the same ``parent`` (null for a first message). ``messages`` lists every version, oldest first,
so a parent always comes before its children; ``selected`` marks the version shown among its siblings.
``path`` is what the user sees: the ids of the selected messages from the first one down, in order.

Version 1 had no ``path``, ``parent``, ``selected``, ``reasoning`` or ``tool_calls``: its ``messages`` were
one line, each answering the one before. The import reads both.

A single conversation exports as the same document with one entry. Image bytes are referenced, never
inlined: the sha256 identifies them, the url fetches them. The Markdown export shows the visible path only.
"""

import json
import zipfile
from io import BytesIO

from django.db.models import Prefetch
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import slugify

from chat.models import Attachment, Message
from chat.tree import Tree

FORMAT = "claude-chat.conversations"
VERSION = 2
# A tool step in Markdown is one line: long arguments and results are cut to these many characters.
STEP_ARGUMENTS_CHARS = 80
STEP_RESULT_CHARS = 200


def with_transcripts(queryset):
    """The conversations with everything an export needs, in a fixed number of queries."""
    attachments = Prefetch("attachments", queryset=Attachment.objects.select_related("blob"))
    messages = Prefetch("messages", queryset=Message.objects.prefetch_related(attachments))
    return queryset.select_related("owner").prefetch_related(messages)


def attachment_url(attachment, request=None):
    """The URL an attachment's image is served at (absolute with a request), or None if not routed."""
    try:
        url = reverse("chat:attachment", args=[attachment.public_id])
    except NoReverseMatch:
        return None
    return request.build_absolute_uri(url) if request is not None else url


def to_document(conversations, request=None):
    """The JSON-ready export document (see the module docstring) of prefetched conversations."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "conversations": [_conversation(conv, request) for conv in conversations],
    }


def tree_of(messages):
    """The ``Tree`` of a conversation's already loaded messages (no query)."""
    return Tree((m.pk, m.parent_id, m.selected, m.public_id) for m in messages)


def visible(messages):
    """The messages the user sees, in order, as ``(message, branch)`` pairs (its position among its versions)."""
    tree = tree_of(messages)
    by_pk = {message.pk: message for message in messages}
    return [(by_pk[pk], tree.branch(pk)) for pk in tree.path()]


def to_json(conversations, request=None):
    return json.dumps(to_document(conversations, request), ensure_ascii=False, indent=2)


def to_markdown(conversation, request=None):
    """One conversation as a Markdown document: a header, then each message under its role."""
    lines = [f"# {conversation.display_title}", ""]
    lines += [
        f"- Owner: {conversation.owner.get_username()}",
        f"- Started: {_iso(conversation.created_at)}",
        f"- Conversation: {conversation.public_id}",
        "",
    ]
    for message, branch in visible(conversation.messages.all()):
        lines += _message_markdown(message, branch, request)
    return "\n".join(lines).rstrip() + "\n"


def to_markdown_zip(conversations, request=None):
    """Several conversations as a zip of Markdown files, one per conversation."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for conv in conversations:
            archive.writestr(filename(conv, "md"), to_markdown(conv, request))
    return buffer.getvalue()


def filename(conversation, extension):
    """A safe download name: the title's slug plus the id, so two chats with one title never collide."""
    slug = slugify(conversation.title)[:40] or "conversation"
    return f"{slug}-{conversation.public_id.hex[:8]}.{extension}"


def _conversation(conv, request):
    messages = conv.messages.all()
    public_ids = {message.pk: str(message.public_id) for message in messages}
    return {
        "id": str(conv.public_id),
        "title": conv.title,
        "owner": conv.owner.get_username(),
        "created_at": _iso(conv.created_at),
        "updated_at": _iso(conv.updated_at),
        "path": [public_ids[pk] for pk in tree_of(messages).path()],
        "messages": [_message(message, public_ids.get(message.parent_id), request) for message in messages],
    }


def _message(message, parent, request):
    return {
        "id": str(message.public_id),
        "parent": parent,
        "selected": message.selected,
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning,
        "tool_calls": [_tool_call(step) for step in message.tool_calls],
        "status": message.status,
        "error": message.error,
        "model": message.model,
        "finish_reason": message.finish_reason,
        "usage": {
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
            "total_tokens": message.total_tokens,
        },
        "timings": {
            "created_at": _iso(message.created_at),
            "first_token_at": _iso(message.first_token_at),
            "finished_at": _iso(message.finished_at),
            "time_to_first_token": message.time_to_first_token,
            "duration": message.duration,
        },
        "attachments": [_attachment(attachment, request) for attachment in message.attachments.all()],
    }


def _tool_call(step):
    # The stored step also has a "status" (running or done) that only matters while a reply streams.
    return {
        "id": step.get("id") or "",
        "name": step.get("name") or "",
        "arguments": step.get("arguments") or "",
        "result": step.get("result"),
        "is_error": bool(step.get("is_error")),
    }


def _attachment(attachment, request):
    blob = attachment.blob
    return {
        "id": str(attachment.public_id),
        "sha256": blob.sha256,
        "url": attachment_url(attachment, request),
        "filename": attachment.filename,
        "content_type": blob.content_type,
        "width": blob.width,
        "height": blob.height,
    }


def _message_markdown(message, branch, request):
    heading = "User" if message.role == Message.Role.USER else f"Assistant ({message.model or 'unknown model'})"
    if branch["count"] > 1:
        heading += f" · version {branch['index']} of {branch['count']}"
    lines = [f"## {heading}", f"<!-- {message.public_id} · {_iso(message.created_at)} · {message.status} -->", ""]
    if message.reasoning:
        # Collapsed where Markdown renders HTML (GitHub, most editors); a plain block elsewhere.
        lines += ["<details><summary>Thinking</summary>", "", message.reasoning, "", "</details>", ""]
    for step in message.tool_calls:
        lines += [f"> {_step_line(step)}", ""]
    if message.content:
        lines += [message.content, ""]
    for attachment in message.attachments.all():
        url = attachment_url(attachment, request) or f"sha256:{attachment.blob.sha256}"
        lines += [f"![{_link_text(attachment.filename or 'image')}]({url})", ""]
    if message.error:
        lines += [f"> **Error:** {message.error}", ""]
    elif message.status in (Message.Status.STOPPED, Message.Status.INTERRUPTED):
        lines += [f"> *{message.get_status_display()}*", ""]
    if message.total_tokens is not None:
        lines += [f"*Tokens: {message.prompt_tokens or 0} in, {message.completion_tokens or 0} out*", ""]
    return lines


def _step_line(step):
    """A tool step as one short line: ``Used calculator(2+2) → 4``, or ``clock(Mars) failed: …``."""
    call = f"{step.get('name') or 'tool'}({_short(_arguments_text(step.get('arguments')), STEP_ARGUMENTS_CHARS)})"
    result = _short(step.get("result") or "", STEP_RESULT_CHARS)
    if step.get("is_error"):
        return f"{call} failed: {result}" if result else f"{call} failed"
    return f"Used {call} → {result}" if result else f"Used {call}"


def _arguments_text(arguments):
    """The values of a JSON object of arguments, comma-separated (``2+2`` rather than ``{"expression": …}``)."""
    try:
        values = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return str(arguments)  # as the model wrote it
    if not isinstance(values, dict):
        return arguments
    return ", ".join(value if isinstance(value, str) else json.dumps(value) for value in values.values())


def _short(text, limit):
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _link_text(text):
    return text.replace("[", "(").replace("]", ")")


def _iso(value):
    return value.isoformat() if value is not None else None
