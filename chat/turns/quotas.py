"""Per-user quotas: messages a minute and tokens a day, so one person cannot spend everyone's upstream budget.

``check`` runs inside the transaction that stores a send, after the user's row is locked, so two sends of one
user (any tab, any process) are counted one after the other.
"""

from datetime import timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from chat.models import Message


class QuotaExceeded(Exception):
    """A send refused by a quota; ``message`` is meant to be shown as is."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def check(user):
    """Raise QuotaExceeded when ``user`` may not send one more message now."""
    if settings.CHAT_QUOTA_EXEMPT_STAFF and user.is_staff:
        return
    sent, tokens = _usage(Message.objects.filter(conversation__owner=user), timezone.now())
    limit = settings.CHAT_USER_MESSAGES_PER_MINUTE
    if sent >= limit:
        raise QuotaExceeded(f"Too many messages: the limit is {limit} a minute. Please wait a moment and send again.")
    if tokens >= settings.CHAT_USER_TOKENS_PER_DAY:
        raise QuotaExceeded("You have used today's allowance of model tokens. It resets at 00:00 UTC.")


def tokens_today(messages, now):
    """Tokens of today's replies (UTC): reported usage when known, else the estimate of a reply still streaming."""
    return _usage(messages, now)[1]


def _usage(messages, now):
    """``(user messages of the last minute, tokens of today's replies)``.

    This runs before every reply's first token: one plain query for the rows that count (today's replies, the
    last minute's messages), added up here. Conditional aggregates would say the same in SQL, but the ORM takes
    about as long to build them (~1 ms) as this takes to fetch and add a thousand replies, and a person's day
    is usually far fewer.
    """
    midnight = now.astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    counted = Q(role=Message.Role.USER, created_at__gte=now - timedelta(minutes=1)) | Q(
        role=Message.Role.ASSISTANT, created_at__gte=midnight
    )
    fields = ("role", "status", "prompt_tokens", "completion_tokens", "estimated_tokens")
    rows = messages.filter(counted).values_list(*fields)
    sent = tokens = 0
    for role, status, prompt, completion, estimated in rows:
        if role == Message.Role.USER:
            sent += 1
        else:
            pending = estimated if status == Message.Status.STREAMING else 0  # usage not reported yet
            tokens += (prompt or 0) + (completion or 0) + (pending or 0)
    return sent, tokens
