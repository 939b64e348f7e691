"""The JSON shapes of messages and attachments on the socket (docs/protocol.md), from explicit inputs.

Nothing here reads the database: the caller passes a message's attachments, its position among its
versions and, for a streaming reply, what has been written so far. ``encode`` is the one way a frame becomes
the text sent to sockets and relayed to other processes.
"""

import json

from chat.rendering.markdown import render_markdown

_UNRATED = object()  # no "rating" key: only history frames carry the owner's vote


def encode(frame):
    return json.dumps(frame, separators=(",", ":"))


def attachment_data(item):
    """An attachment as the protocol and the upload response show it."""
    return {
        "id": str(item.public_id),
        "url": item.get_absolute_url(),
        "width": item.blob.width,
        "height": item.blob.height,
        "content_type": item.blob.content_type,
        "filename": item.filename,
    }


def message_data(message, *, attachments=(), branch=None, seq=0, content=None, html=None, tail="", reasoning=None,
            tools=None, rating=_UNRATED):
    """A message object of ``message`` and ``history`` frames.

    ``attachments`` are the message's images (prefetched with ``Attachment.objects.for_display()``);
    ``branch`` its position among its versions (``Tree.branch``), None where unknown. ``content``,
    ``reasoning`` and ``tools`` override the stored ones (a streaming reply's text so far), ``html`` is the
    rendered content (rendered here when not given) and ``tail`` the still-open last block. ``rating``, when
    given, is the owner's vote (1, -1 or None).
    """
    content = message.content if content is None else content
    reasoning = message.reasoning if reasoning is None else reasoning
    frame = {
        "id": str(message.public_id),
        "role": message.role,
        "status": message.status,
        "content": content,
        "html": render_markdown(content) if html is None else html,
        "tail": tail,
        "error": message.error,
        "seq": seq,
        "client_id": str(message.client_id) if message.client_id else None,
        "model": message.model,
        "finish_reason": message.finish_reason,
        "usage": message.usage,
        "created": message.created_at.isoformat(),
        "attachments": [attachment_data(item) for item in attachments],
        "reasoning": reasoning,
        # Rendered once the reply is done; while it streams the thinking is shown as plain text.
        "reasoning_html": render_markdown(reasoning) if reasoning and message.status != "streaming" else "",
        "tools": list(message.tool_calls if tools is None else tools),
        "branch": branch,
    }
    if rating is not _UNRATED:
        frame["rating"] = rating
    return frame


def stored_attachments(message):
    """The images of a stored message as prefetched with it: a user's, never a reply's."""
    return message.attachments.all() if message.role == "user" else ()


def message_frame(message, **fields):
    """An encoded ``message`` frame of ``message``, with its prefetched images unless ``attachments`` is given;
    ``fields`` as ``message_data``."""
    fields.setdefault("attachments", stored_attachments(message))
    return encode({"type": "message", "message": message_data(message, **fields)})
