"""The review console: staff read conversations in the Django admin; nobody writes transcripts here.

Who sees what:
- only staff reach the admin at all (Django's own rule);
- reading conversations, the dashboard and the inbox needs ``chat.view_conversation`` (the ``reviewer`` group,
  created by migration 0004, has it); marking an inbox item reviewed needs ``chat.add_reviewmark``;
- nobody adds or edits conversations, messages or feedback; deleting a conversation needs the delete permission
  (superusers have it, reviewers do not);
- users, groups and the transcript audit log are for superusers only, whatever permissions a staff account holds;
- every reading of message text or images is audited (transcripts, exports, searches, image fetches) and the lists
  filter by their declared filters alone, so no URL lookup probes text unaudited.

This module holds the registrations. The pages beyond Django's own (transcript, export, dashboard, inbox) are in
chat/review/console.py; filters, computed columns, queryset helpers and permission mixins in chat/review/.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.shortcuts import redirect
from django.urls import path, reverse

from chat.models import Conversation, Feedback, Message, ReviewMark, TranscriptView
from chat.review import console, queries
from chat.review.access import (
    AuditedSearchMixin,
    DeclaredLookupsOnlyMixin,
    ReadOnlyAdminMixin,
    SuperuserOnlyMixin,
    audit_search,
)
from chat.review.columns import AuditColumns, ConversationColumns, MessageColumns, ReplyNoteColumns
from chat.review.filters import (
    CreatedFilter,
    HasImagesFilter,
    LastActivityFilter,
    ModelFilter,
    NegativeFeedbackFilter,
    OwnerFilter,
    ReplyStatusFilter,
)

admin.site.site_header = "Claude Chat review console"
admin.site.site_title = "Claude Chat admin"
admin.site.index_title = "Review console"


@admin.register(Conversation)
class ConversationAdmin(AuditedSearchMixin, DeclaredLookupsOnlyMixin, ReadOnlyAdminMixin, ConversationColumns,
                        admin.ModelAdmin):
    list_display = ["display_title", "owner_name", "started", "last_activity", "message_count", "tokens",
                    "last_reply_status", "feedback_summary"]
    list_display_links = ["display_title"]
    list_select_related = ["owner"]
    list_filter = [OwnerFilter, ("created_at", CreatedFilter), ("updated_at", LastActivityFilter), ReplyStatusFilter,
                   ModelFilter, HasImagesFilter, NegativeFeedbackFilter]
    # Searched by get_search_results below; listed so the search box shows.
    search_fields = ["title", "owner__username", "owner__email", "messages__content"]
    search_help_text = "Searches titles, user names and e-mails, and the text of every message."
    ordering = ["-updated_at", "-id"]
    list_per_page = 50
    # The unfiltered total would cost one more COUNT over the whole table on every page.
    show_full_result_count = False
    actions = ["export_json", "export_markdown"]

    def get_queryset(self, request):
        return queries.with_summary(super().get_queryset(request).select_related("owner"))

    def get_search_results(self, request, queryset, search_term):
        """Every word must match (``queries.search_conversations``); never any duplicate to remove. Audited."""
        audit_search(request, search_term)
        return queries.search_conversations(queryset, search_term), False

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("dashboard/", view(self._bound(console.dashboard)), name="chat_conversation_dashboard"),
            path("dashboard.csv", view(self._bound(console.dashboard_csv)), name="chat_conversation_dashboard_csv"),
            path("inbox/", view(self._bound(console.inbox)), name="chat_conversation_inbox"),
            path("inbox/<uuid:message_id>/review/", view(self._bound(console.mark_reviewed)),
                 name="chat_conversation_review"),
            path("<path:object_id>/export/<str:fmt>/", view(self._bound(console.export)),
                 name="chat_conversation_export"),
        ]
        return custom + super().get_urls()

    def _bound(self, view):
        def bound(request, *args, **kwargs):
            return view(request, self, *args, **kwargs)

        return bound

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return console.transcript(request, self, object_id)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Conversations", **(extra_context or {})})

    @admin.action(description="Export selected conversations as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        return console.export_many(request, queryset, "json")

    @admin.action(description="Export selected conversations as Markdown (zip)", permissions=["view"])
    def export_markdown(self, request, queryset):
        return console.export_many(request, queryset, "md")


# --- Messages and feedback (lists to find things; reading happens in the transcript) --------------------------------


@admin.register(Message)
class MessageAdmin(AuditedSearchMixin, DeclaredLookupsOnlyMixin, ReadOnlyAdminMixin, MessageColumns, admin.ModelAdmin):
    list_display = ["sent", "conversation_title", "conversation_owner", "role", "status", "model", "tokens"]
    list_display_links = None
    list_select_related = ["conversation__owner"]
    list_filter = ["status", "role", "model", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=public_id", "conversation__owner__username", "error"]
    search_help_text = "Searches message ids, user names and error texts (message text: search the conversations)."
    ordering = ["-created_at", "-id"]
    list_per_page = 100
    show_full_result_count = False
    # Messages go with their conversation; none is removed from the middle of a transcript.
    actions = None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A message is read in its transcript, where the reading is audited.
        message = self.get_object(request, object_id) if request.method == "GET" else None
        if message is None or not self.has_view_permission(request, message):
            return super().change_view(request, object_id, form_url, extra_context)
        return redirect(f"{reverse('admin:chat_conversation_change', args=[message.conversation_id])}"
                        f"#m-{message.public_id}")


class ReplyNoteAdmin(DeclaredLookupsOnlyMixin, ReadOnlyAdminMixin, ReplyNoteColumns, admin.ModelAdmin):
    """A read-only list of notes about replies (feedback, review marks), each linking to its reply."""

    list_display_links = None
    actions = None
    ordering = ["-created_at", "-id"]
    show_full_result_count = False


@admin.register(Feedback)
class FeedbackAdmin(ReplyNoteAdmin):
    list_display = ["created_at", "rating", "reply", "user", "comment"]
    list_select_related = ["user", "message"]
    list_filter = ["rating", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["comment", "user__username"]


@admin.register(ReviewMark)
class ReviewMarkAdmin(ReplyNoteAdmin):
    list_display = ["created_at", "reviewer", "reply", "note"]
    list_select_related = ["reviewer", "message"]
    list_filter = [("created_at", admin.DateFieldListFilter)]
    search_fields = ["note", "reviewer__username"]


# --- Superusers only: the audit log, users and groups -------------------------------------------------------------


@admin.register(TranscriptView)
class TranscriptViewAdmin(DeclaredLookupsOnlyMixin, SuperuserOnlyMixin, AuditColumns, admin.ModelAdmin):
    list_display = ["viewed_at", "viewer_username", "action", "conversation_link", "detail"]
    list_display_links = None
    list_filter = ["action", ("viewed_at", admin.DateFieldListFilter)]
    search_fields = ["viewer_username", "=conversation_public_id"]
    ordering = ["-viewed_at", "-id"]
    show_full_result_count = False
    actions = None

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Transcript audit log", **(extra_context or {})})

    # An audit log is append-only, for superusers too.
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


for model in (get_user_model(), Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(get_user_model())
class SuperuserUserAdmin(SuperuserOnlyMixin, UserAdmin):
    pass


@admin.register(Group)
class SuperuserGroupAdmin(SuperuserOnlyMixin, GroupAdmin):
    pass
