"""A read-only review console for conversations (staff read transcripts; nobody edits them here)."""

from django.contrib import admin
from django.db.models import Count, Sum

from .models import Conversation, Message


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MessageInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["role", "status", "content", "error", "model", "finish_reason", "prompt_tokens",
              "completion_tokens", "created_at", "first_token_at", "finished_at"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["display_title", "owner", "created_at", "updated_at", "message_count", "total_tokens"]
    list_select_related = ["owner"]
    list_filter = ["created_at", "messages__status"]
    search_fields = ["title", "owner__username", "messages__content"]
    ordering = ["-updated_at"]
    readonly_fields = ["public_id", "owner", "title", "created_at", "updated_at"]
    inlines = [MessageInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _messages=Count("messages", distinct=True),
            _tokens=Sum("messages__completion_tokens") + Sum("messages__prompt_tokens"),
        )

    @admin.display(description="Title")
    def display_title(self, obj):
        return obj.display_title

    @admin.display(description="Messages", ordering="_messages")
    def message_count(self, obj):
        return obj._messages

    @admin.display(description="Tokens", ordering="_tokens")
    def total_tokens(self, obj):
        return obj._tokens or 0


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["public_id", "conversation", "role", "status", "model", "prompt_tokens", "completion_tokens",
                    "created_at"]
    list_select_related = ["conversation", "conversation__owner"]
    list_filter = ["status", "role", "model"]
    search_fields = ["content", "error", "conversation__owner__username"]
    readonly_fields = [f.name for f in Message._meta.fields]
