"""The conversation list's filters in the review console: by user (typed, not picked), date, reply status, model,
images and negative feedback. Each narrows a queryset of conversations; none joins rows that would repeat one."""

from django.contrib import admin
from django.db.models import Exists, OuterRef

from chat.models import Attachment, Feedback, Message
from chat.review import queries


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


class ReplyStatusFilter(admin.SimpleListFilter):
    title = "reply status"
    parameter_name = "status"
    STATUSES = [Message.Status.ERROR, Message.Status.INTERRUPTED, Message.Status.STOPPED, Message.Status.STREAMING]

    def lookups(self, request, model_admin):
        return [(status.value, f"has {status.label.lower()} replies") for status in self.STATUSES]

    def queryset(self, request, queryset):
        if self.value() in self.STATUSES:
            return queryset.filter(queries.has_message(status=self.value()))
        return queryset


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        models = Message.objects.exclude(model="").order_by("model").values_list("model", flat=True).distinct()
        return [(name, name) for name in models]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(queries.has_message(model=self.value()))
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
