"""Computed columns of the review console's lists, as mixins for the ModelAdmins in chat/admin.py.

The conversation columns read the annotations of ``queries.summary_annotations``; every list links to the
transcript, where reading is audited, rather than to a change form.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.timezone import localtime


def short_date(value, with_time=False):
    return date_format(localtime(value), "Y-m-d H:i" if with_time else "Y-m-d")


def transcript_link(message, text):
    """``text`` linking to ``message`` in its conversation's transcript."""
    url = reverse("admin:chat_conversation_change", args=[message.conversation_id])
    return format_html('<a href="{}#m-{}">{}</a>', url, message.public_id, text)


class ConversationColumns:
    @admin.display(description="Title", ordering="title")
    def display_title(self, obj):
        return obj.display_title

    @admin.display(description="User", ordering="owner__username")
    def owner_name(self, obj):
        username = obj.owner.get_username()
        return format_html('<a href="?{}" title="Only this user">{}</a>', urlencode({"owner": username}), username)

    @admin.display(description="Started", ordering="created_at")
    def started(self, obj):
        return short_date(obj.created_at)

    @admin.display(description="Last activity", ordering="updated_at")
    def last_activity(self, obj):
        return short_date(obj.updated_at, with_time=True)

    @admin.display(description="Messages", ordering="n_messages")
    def message_count(self, obj):
        return obj.n_messages

    @admin.display(description="Tokens in / out", ordering="n_tokens")
    def tokens(self, obj):
        return f"{obj.n_prompt_tokens:,} / {obj.n_completion_tokens:,}"

    @admin.display(description="Last reply", ordering="last_status")
    def last_reply_status(self, obj):
        if not obj.last_status:
            return "–"
        return format_html('<span class="chat-status chat-status--{}">{}</span>', obj.last_status, obj.last_status)

    @admin.display(description="Feedback")
    def feedback_summary(self, obj):
        if not (obj.n_up or obj.n_down):
            return "–"
        return format_html('<span title="helpful / not helpful">+{}&nbsp;−{}</span>', obj.n_up, obj.n_down)


class MessageColumns:
    @admin.display(description="Sent", ordering="created_at")
    def sent(self, obj):
        return transcript_link(obj, short_date(obj.created_at, with_time=True))

    @admin.display(description="Conversation")
    def conversation_title(self, obj):
        return obj.conversation.display_title

    @admin.display(description="User", ordering="conversation__owner__username")
    def conversation_owner(self, obj):
        return obj.conversation.owner.get_username()

    @admin.display(description="Tokens in / out")
    def tokens(self, obj):
        if obj.total_tokens is None:
            return "–"
        return f"{obj.prompt_tokens or 0:,} / {obj.completion_tokens or 0:,}"


class ReplyNoteColumns:
    """Columns of a note about a reply (feedback, a review mark)."""

    @admin.display(description="Reply")
    def reply(self, obj):
        return transcript_link(obj.message, "open in transcript")


class AuditColumns:
    """Columns of the transcript audit log, whose conversation may have been deleted since."""

    @admin.display(description="Conversation")
    def conversation_link(self, obj):
        if obj.conversation_public_id is None:
            return "–"  # a search, which names no conversation
        if obj.conversation_id is None:
            return f"{obj.conversation_public_id} (deleted)"
        url = reverse("admin:chat_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">{}</a>', url, obj.conversation_public_id)
