"""Who may do what in the review console, as ModelAdmin mixins: transcripts are read-only for everyone, and some
models are for superusers alone whatever permissions a staff account holds; lists filter by their declared
filters only, and searching them is audited."""

from django.contrib.admin import FieldListFilter, SimpleListFilter
from django.contrib.admin.utils import get_fields_from_path

from chat.models import TranscriptView


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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


class DeclaredLookupsOnlyMixin:
    """A list filters by its declared filters alone: any other lookup in the URL (``content__regex=``,
    ``messages__content__startswith=``, ``_changelist_filters=``…) is refused, as Django refuses a disallowed
    lookup (a 400), so no query string can probe text the list does not show."""

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in self.declared_lookups(request)

    def declared_lookups(self, request):
        """The query parameters the list's filters read."""
        names = set()
        for item in self.get_list_filter(request):
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                names.add(item.parameter_name)
                continue
            field_path, filter_class = item if isinstance(item, (list, tuple)) else (item, FieldListFilter.create)
            field = get_fields_from_path(self.model, field_path)[-1]
            spec = filter_class(field, request, {}, self.model, self, field_path=field_path)
            names.update(spec.expected_parameters())
        return names


class AuditedSearchMixin:
    """A search writes an audit row naming it, from the list's box or Django's autocomplete view alike: it reaches
    text the list does not show."""

    def get_search_results(self, request, queryset, search_term):
        audit_search(request, search_term)
        return super().get_search_results(request, queryset, search_term)


def audit_search(request, search_term):
    """Record ``search_term`` for the request's user, once per request (a list with facets searches again)."""
    term = search_term.strip()
    if term and getattr(request, "_audited_search", None) != term:
        TranscriptView.record_search(request.user, term)
        request._audited_search = term
