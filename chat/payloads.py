"""Turns stored messages into the API's ``messages`` list (HEROKU_INFERENCE.md, "Request body")."""

from django.conf import settings

from .models import Message

# Replies that failed before writing anything add nothing to the context.
_USABLE_REPLY = (Message.Status.COMPLETE, Message.Status.STOPPED, Message.Status.INTERRUPTED, Message.Status.ERROR)


def build_messages(conversation, *, before=None):
    """The system prompt and the conversation's history up to (not including) the reply ``before``.

    Consecutive messages of one role are merged, so a user message whose reply failed still reaches
    the model with the next one, and roles alternate as the API expects.
    """
    history = conversation.messages.exclude(status=Message.Status.STREAMING)
    if before is not None:
        history = history.filter(id__lt=before.id)
    # Plain tuples: this runs before every reply, over up to CHAT_HISTORY_MESSAGES rows.
    rows = history.order_by("-id").values_list("role", "status", "content")[: settings.CHAT_HISTORY_MESSAGES]
    messages = [{"role": "system", "content": settings.CHAT_SYSTEM_PROMPT}]
    for role, status, content in reversed(rows):
        if role == Message.Role.ASSISTANT and (status not in _USABLE_REPLY or not content):
            continue
        _append(messages, role, content)
    # The API expects the conversation to start with a user turn.
    while len(messages) > 1 and messages[1]["role"] != "user":
        messages.pop(1)
    return messages


def _append(messages, role, content):
    if messages[-1]["role"] == role:
        messages[-1]["content"] += "\n\n" + content
    else:
        messages.append({"role": role, "content": content})
