"""The review console: staff read conversations in the Django admin; nobody writes transcripts here.

Who sees what:
- only staff reach the admin at all (Django's own rule);
- reading conversations, the dashboard and the inbox needs ``chat.view_conversation`` (the ``reviewer`` group,
  created by migration 0004, has it); marking an inbox item reviewed needs ``chat.add_reviewmark``;
- nobody adds or edits conversations, messages or feedback; deleting a conversation needs the delete permission
  (superusers have it, reviewers do not);
- users, groups and the transcript audit log are for superusers only, whatever permissions a staff account holds.

The pages beyond Django's own (transcript, export, dashboard, inbox) live in ``admin_views``.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import smart_split, unescape_string_literal
from django.utils.timezone import localtime

from chat.models import Attachment, Conversation, Feedback, Message, ReviewMark, TranscriptView
from chat.review import console

admin.site.site_header = "Claude Chat review console"
admin.site.site_title = "Claude Chat admin"
admin.site.index_title = "Review console"


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- Filters ----------------------------------------------------------------------------------------------------


class InputFilter(admin.SimpleListFilter):
    """A filter typed into a box rather than picked from a list (a site can have thousands of users)."""

    template = "admin/chat/input_filter.html"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self):
        return True

    def choices(self, changelist):
        keep = {k: v for k, v in changelist.params.items() if k not in (self.parameter_name, "p")}
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value() or "",
            "hidden": sorted(keep.items()),
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name]),
        }


class OwnerFilter(InputFilter):
    title = "user"
    parameter_name = "owner"

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(owner__username__iexact=self.value())
        return queryset


def _has_message(**lookups):
    return Exists(Message.objects.filter(conversation=OuterRef("pk"), **lookups))


class ReplyStatusFilter(admin.SimpleListFilter):
    title = "reply status"
    parameter_name = "status"
    STATUSES = [Message.Status.ERROR, Message.Status.INTERRUPTED, Message.Status.STOPPED, Message.Status.STREAMING]

    def lookups(self, request, model_admin):
        return [(status.value, f"has {status.label.lower()} replies") for status in self.STATUSES]

    def queryset(self, request, queryset):
        if self.value() in self.STATUSES:
            return queryset.filter(_has_message(status=self.value()))
        return queryset


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        models = Message.objects.exclude(model="").order_by("model").values_list("model", flat=True).distinct()
        return [(name, name) for name in models]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(_has_message(model=self.value()))
        return queryset


class TitledDateFilter(admin.DateFieldListFilter):
    """Django's date filter under a title of our choosing rather than the field's verbose name."""

    filter_title = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = self.filter_title or self.title


class CreatedFilter(TitledDateFilter):
    filter_title = "started"


class LastActivityFilter(TitledDateFilter):
    filter_title = "last activity"


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on whether ``condition()`` holds for a conversation."""

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.filter(~self.condition())
        return queryset


class HasImagesFilter(YesNoFilter):
    title = "images"
    parameter_name = "images"

    def condition(self):
        return Exists(Attachment.objects.filter(message__conversation=OuterRef("pk")))


class NegativeFeedbackFilter(YesNoFilter):
    title = "negative feedback"
    parameter_name = "negative"

    def condition(self):
        return Exists(Feedback.objects.filter(message__conversation=OuterRef("pk"), rating=Feedback.Rating.DOWN))


# --- Conversations ------------------------------------------------------------------------------------------------


def _per_conversation(queryset, group_by, aggregate):
    """A correlated subquery: ``aggregate`` over ``queryset`` (already narrowed to the outer conversation and
    grouped by ``group_by``), 0 when there are no rows.

    Subqueries rather than joins: joins would multiply each other's rows and be narrowed by a search on text.
    """
    values = queryset.order_by().values(group_by).annotate(value=aggregate).values("value")
    return Coalesce(Subquery(values, output_field=IntegerField()), Value(0))


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


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
        return super().get_queryset(request).select_related("owner").annotate(
            **_summary_annotations(), n_tokens=Coalesce("n_prompt_tokens", 0) + Coalesce("n_completion_tokens", 0)
        )

    def get_search_results(self, request, queryset, search_term):
        """Every word must match the title, the owner or some message; message text is matched with EXISTS,
        so a conversation is listed once however many of its messages match."""
        for word in smart_split(search_term):
            if word[:1] in "\"'" and word[-1:] == word[:1]:
                word = unescape_string_literal(word)
            queryset = queryset.filter(
                Q(title__icontains=word) | Q(owner__username__icontains=word) | Q(owner__email__icontains=word)
                | _has_message(content__icontains=word)
            )
        return queryset, False

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

    @admin.display(description="Title", ordering="title")
    def display_title(self, obj):
        return obj.display_title

    @admin.display(description="User", ordering="owner__username")
    def owner_name(self, obj):
        username = obj.owner.get_username()
        return format_html('<a href="?{}" title="Only this user">{}</a>', urlencode({"owner": username}), username)

    @admin.display(description="Started", ordering="created_at")
    def started(self, obj):
        return _short_date(obj.created_at)

    @admin.display(description="Last activity", ordering="updated_at")
    def last_activity(self, obj):
        return _short_date(obj.updated_at, with_time=True)

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

    @admin.action(description="Export selected conversations as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        return console.export_many(request, queryset, "json")

    @admin.action(description="Export selected conversations as Markdown (zip)", permissions=["view"])
    def export_markdown(self, request, queryset):
        return console.export_many(request, queryset, "md")


def _short_date(value, with_time=False):
    return date_format(localtime(value), "Y-m-d H:i" if with_time else "Y-m-d")


# --- Messages and feedback (lists to find things; reading happens in the transcript) --------------------------------


def _transcript_link(message, text):
    url = reverse("admin:chat_conversation_change", args=[message.conversation_id])
    return format_html('<a href="{}#m-{}">{}</a>', url, message.public_id, text)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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

    @admin.display(description="Sent", ordering="created_at")
    def sent(self, obj):
        return _transcript_link(obj, _short_date(obj.created_at, with_time=True))

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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A message is read in its transcript, where the reading is audited.
        message = self.get_object(request, object_id) if request.method == "GET" else None
        if message is None or not self.has_view_permission(request, message):
            return super().change_view(request, object_id, form_url, extra_context)
        return redirect(f"{reverse('admin:chat_conversation_change', args=[message.conversation_id])}"
                        f"#m-{message.public_id}")


class ReplyNoteAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A read-only list of notes about replies (feedback, review marks), each linking to its reply."""

    list_display_links = None
    actions = None
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    @admin.display(description="Reply")
    def reply(self, obj):
        return _transcript_link(obj.message, "open in transcript")


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


class SuperuserOnlyMixin:
    """Visible and usable by superusers alone, whatever model permissions a staff account was given."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


@admin.register(TranscriptView)
class TranscriptViewAdmin(SuperuserOnlyMixin, admin.ModelAdmin):
    list_display = ["viewed_at", "viewer_username", "action", "conversation_link"]
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

    @admin.display(description="Conversation")
    def conversation_link(self, obj):
        if obj.conversation_id is None:
            return f"{obj.conversation_public_id} (deleted)"
        url = reverse("admin:chat_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">{}</a>', url, obj.conversation_public_id)


for model in (get_user_model(), Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(get_user_model())
class SuperuserUserAdmin(SuperuserOnlyMixin, UserAdmin):
    pass


@admin.register(Group)
class SuperuserGroupAdmin(SuperuserOnlyMixin, GroupAdmin):
    pass
