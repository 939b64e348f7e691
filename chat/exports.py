"""Conversations as portable documents: JSON (for machines, and a future import) and Markdown (for people).

The JSON shape, version 1. A later import reads exactly this, so change it only by bumping ``version``::

    {
      "format": "claude-chat.conversations",
      "version": 1,
      "exported_at": "<ISO 8601>",
      "conversations": [
        {
          "id": "<conversation uuid>",
          "title": "<string, may be empty>",
          "owner": "<username>",
          "created_at": "<ISO 8601>",
          "updated_at": "<ISO 8601>",
          "messages": [
            {
              "id": "<message uuid>",
              "role": "user" | "assistant",
              "content": "<Markdown source, as stored>",
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

A single conversation exports as the same document with one entry. Image bytes are referenced, never
inlined: the sha256 identifies them, the url fetches them.
"""

import json
import zipfile
from io import BytesIO

from django.db.models import Prefetch
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import slugify

from .models import Attachment, Message

FORMAT = "claude-chat.conversations"
VERSION = 1


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
    for message in conversation.messages.all():
        lines += _message_markdown(message, request)
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
    return {
        "id": str(conv.public_id),
        "title": conv.title,
        "owner": conv.owner.get_username(),
        "created_at": _iso(conv.created_at),
        "updated_at": _iso(conv.updated_at),
        "messages": [_message(message, request) for message in conv.messages.all()],
    }


def _message(message, request):
    return {
        "id": str(message.public_id),
        "role": message.role,
        "content": message.content,
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


def _message_markdown(message, request):
    heading = "User" if message.role == Message.Role.USER else f"Assistant ({message.model or 'unknown model'})"
    lines = [f"## {heading}", f"<!-- {message.public_id} · {_iso(message.created_at)} · {message.status} -->", ""]
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


def _link_text(text):
    return text.replace("[", "(").replace("]", ")")


def _iso(value):
    return value.isoformat() if value is not None else None
