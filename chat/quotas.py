"""Per-user quotas: messages a minute and tokens a day, so one person cannot spend everyone's upstream budget.

``check`` runs inside the transaction that stores a send, after the user's row is locked, so two sends of one
user (any tab, any process) are counted one after the other.
"""

from datetime import timedelta, timezone as dt_timezone

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from .models import Message


class QuotaExceeded(Exception):
    """A send refused by a quota; ``message`` is meant to be shown as is."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def check(user):
    """Raise QuotaExceeded when ``user`` may not send one more message now."""
    if settings.CHAT_QUOTA_EXEMPT_STAFF and user.is_staff:
        return
    now = timezone.now()
    usage = _usage(Message.objects.filter(conversation__owner=user), now)
    limit = settings.CHAT_USER_MESSAGES_PER_MINUTE
    if usage.pop("last_minute") >= limit:
        raise QuotaExceeded(f"Too many messages: the limit is {limit} a minute. Please wait a moment and send again.")
    if sum(value or 0 for value in usage.values()) >= settings.CHAT_USER_TOKENS_PER_DAY:
        raise QuotaExceeded("You have used today's allowance of model tokens. It resets at 00:00 UTC.")


def tokens_today(messages, now):
    """Tokens of today's replies (UTC): reported usage when known, else the estimate of a reply still streaming."""
    usage = _usage(messages, now)
    del usage["last_minute"]
    return sum(value or 0 for value in usage.values())


def _usage(messages, now):
    """The user messages of the last minute and today's reply tokens, in one query: it runs before every reply's
    first token."""
    minute_ago = now - timedelta(minutes=1)
    midnight = now.astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    user, reply = Q(role=Message.Role.USER), Q(role=Message.Role.ASSISTANT)
    return messages.filter(created_at__gte=min(minute_ago, midnight)).aggregate(
        last_minute=Count("pk", filter=user & Q(created_at__gte=minute_ago)),
        prompt=Sum("prompt_tokens", filter=reply & Q(created_at__gte=midnight)),
        completion=Sum("completion_tokens", filter=reply & Q(created_at__gte=midnight)),
        pending=Sum("estimated_tokens", filter=reply & Q(created_at__gte=midnight, status=Message.Status.STREAMING)),
    )
