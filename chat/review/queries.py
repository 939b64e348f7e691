"""Queryset helpers of the review console: per-conversation figures as subqueries, and the conversation search.

Subqueries rather than joins: joins would multiply each other's rows and be narrowed by a search on text.
"""

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.text import smart_split, unescape_string_literal

from chat.models import Feedback, Message


def has_message(**lookups):
    """EXISTS a message of the outer conversation matching ``lookups``."""
    return Exists(Message.objects.filter(conversation=OuterRef("pk"), **lookups))


def _per_conversation(queryset, group_by, aggregate):
    """A correlated subquery: ``aggregate`` over ``queryset`` (already narrowed to the outer conversation and
    grouped by ``group_by``), 0 when there are no rows."""
    values = queryset.order_by().values(group_by).annotate(value=aggregate).values("value")
    return Coalesce(Subquery(values, output_field=IntegerField()), Value(0))


def with_summary(conversations):
    """``conversations`` annotated for the list: message, token and feedback counts, the last reply's status."""
    return conversations.annotate(
        **_summary_annotations(), n_tokens=Coalesce("n_prompt_tokens", 0) + Coalesce("n_completion_tokens", 0)
    )


def _summary_annotations():
    messages = Message.objects.filter(conversation=OuterRef("pk"))
    feedback = Feedback.objects.filter(message__conversation=OuterRef("pk"))
    last_reply = messages.filter(role=Message.Role.ASSISTANT).order_by("-created_at", "-id")
    return {
        "n_messages": _per_conversation(messages, "conversation", Count("id")),
        "n_prompt_tokens": _per_conversation(messages, "conversation", Sum("prompt_tokens")),
        "n_completion_tokens": _per_conversation(messages, "conversation", Sum("completion_tokens")),
        "n_up": _per_conversation(feedback.filter(rating=Feedback.Rating.UP), "message__conversation", Count("id")),
        "n_down": _per_conversation(
            feedback.filter(rating=Feedback.Rating.DOWN), "message__conversation", Count("id")
        ),
        "last_status": Subquery(last_reply.values("status")[:1]),
    }


def search_conversations(queryset, search_term):
    """Conversations where every word matches the title, the owner or some message; message text is matched with
    EXISTS, so a conversation is listed once however many of its messages match. Quoted words stay whole."""
    for word in smart_split(search_term):
        if word[:1] in "\"'" and word[-1:] == word[:1]:
            word = unescape_string_literal(word)
        queryset = queryset.filter(
            Q(title__icontains=word) | Q(owner__username__icontains=word) | Q(owner__email__icontains=word)
            | has_message(content__icontains=word)
        )
    return queryset
