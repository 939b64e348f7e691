"""Review console pages beyond Django's own: the transcript, exports, the usage dashboard and the review inbox.

Each view takes the ConversationAdmin that routes it (see ``ConversationAdmin.get_urls``) and runs inside
``admin_site.admin_view``, so only active staff reach it; each then checks its own permission. Opening or
exporting a transcript writes a TranscriptView row: the audit log superusers read.
"""

import json
from dataclasses import dataclass, field

from django.contrib import messages as flash
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from chat.models import Attachment, Conversation, Feedback, Message, ReviewMark, TranscriptView
from chat.rendering.markdown import render_markdown, render_user_text
from chat.review import reporting
from chat.transfer import exporter

INBOX_PAGE_SIZE = 25
NOTE_MAX_CHARS = 2000


def _context(request, model_admin, title, **extra):
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "title": title, **extra}


def _require_view(request, model_admin, obj=None):
    if not model_admin.has_view_permission(request, obj):
        raise PermissionDenied


# --- Transcript --------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One message as the transcript shows it: sanitised HTML and what surrounds it.

    ``branch`` is its position among its versions (``branches.Tree.branch``); ``shown`` whether it is on the
    visible path, the conversation its owner sees now.
    """

    message: Message
    html: str
    branch: dict
    shown: bool
    reasoning_html: str = ""
    tool_steps: list = field(default_factory=list)
    images: list = field(default_factory=list)
    feedback: list = field(default_factory=list)
    marks: list = field(default_factory=list)


def transcript(request, model_admin, object_id):
    """The conversation as its owner saw it, with every other version of its messages, read-only.

    Every opening is written to the audit log.
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    conversation = model_admin.get_object(request, unquote(object_id))
    if conversation is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.model._meta, object_id)
    _require_view(request, model_admin, conversation)
    entries = _entries(list(_transcript_messages(conversation)))
    TranscriptView.record(request.user, [conversation])
    context = _context(
        request, model_admin, conversation.display_title,
        conversation=conversation, entries=entries, original=conversation,
        hidden_count=sum(not entry.shown for entry in entries),
        can_delete=model_admin.has_delete_permission(request, conversation),
    )
    return TemplateResponse(request, "admin/chat/conversation/transcript.html", context)


def _transcript_messages(conversation):
    return conversation.messages.prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.select_related("blob")),
        Prefetch("feedback", queryset=Feedback.objects.select_related("user").order_by("created_at")),
        Prefetch("review_marks", queryset=ReviewMark.objects.select_related("reviewer")),
    )


def _entries(messages):
    """Every message in conversation order: each one followed by what was said after it, its versions in
    the order they were made, so a hidden version sits right before or after the one shown."""
    tree = exporter.tree_of(messages)
    shown = set(tree.path())
    by_pk = {message.pk: message for message in messages}
    order = _depth_first(tree.children)
    reached = set(order)
    # A row the walk cannot reach (a parent loop, never written by the app) is still listed: reviewers see all.
    order += [message.pk for message in messages if message.pk not in reached]
    return [_entry(by_pk[pk], tree.branch(pk), pk in shown) for pk in order]


def _depth_first(children):
    """Message ids of a tree's ``children`` map, each before its descendants (a stack: threads run deep)."""
    order, stack = [], [pk for pk, _ in reversed(children.get(None, []))]
    while stack:
        pk = stack.pop()
        order.append(pk)
        stack += [child for child, _ in reversed(children.get(pk, []))]
    return order


def _entry(message, branch, shown):
    render = render_user_text if message.role == Message.Role.USER else render_markdown
    return Entry(
        message=message,
        # The renderer's output is sanitised by nh3 against an allow-list, so it is safe to insert as is.
        html=mark_safe(render(message.content)) if message.content else "",
        branch=branch,
        shown=shown,
        reasoning_html=mark_safe(render_markdown(message.reasoning)) if message.reasoning else "",
        tool_steps=[_tool_step(step) for step in message.tool_calls],
        images=[(exporter.attachment_url(attachment), attachment) for attachment in message.attachments.all()],
        feedback=list(message.feedback.all()),
        marks=list(message.review_marks.all()),
    )


def _tool_step(step):
    """A stored tool step as plain text for the template; arguments pretty-printed when they are JSON."""
    return {
        "name": step.get("name") or "tool",
        "arguments": _pretty_json(step.get("arguments") or ""),
        "result": step.get("result") or "",
        "is_error": bool(step.get("is_error")),
    }


def _pretty_json(text):
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return text  # as the model wrote it, valid JSON or not


# --- Exports -----------------------------------------------------------------------------------------------------

EXPORT_TYPES = {"json": "application/json; charset=utf-8", "md": "text/markdown; charset=utf-8"}


@require_GET
def export(request, model_admin, object_id, fmt):
    """One conversation as a JSON or Markdown download (audited like an opening)."""
    if fmt not in EXPORT_TYPES:
        raise Http404
    conversation = get_object_or_404(exporter.with_transcripts(Conversation.objects.all()), pk=unquote(object_id))
    _require_view(request, model_admin, conversation)
    TranscriptView.record(request.user, [conversation], TranscriptView.Action.EXPORT)
    if fmt == "json":
        body = exporter.to_json([conversation], request)
    else:
        body = exporter.to_markdown(conversation, request)
    return _download(body, EXPORT_TYPES[fmt], exporter.filename(conversation, fmt))


def export_many(request, queryset, fmt):
    """The bulk action: the selected conversations as one JSON document or a zip of Markdown files."""
    conversations = list(exporter.with_transcripts(queryset.order_by("-updated_at", "-id")))
    TranscriptView.record(request.user, conversations, TranscriptView.Action.EXPORT)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "json":
        return _download(exporter.to_json(conversations, request), EXPORT_TYPES["json"], f"conversations-{stamp}.json")
    return _download(exporter.to_markdown_zip(conversations, request), "application/zip", f"conversations-{stamp}.zip")


def _download(body, content_type, name):
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- Dashboard ---------------------------------------------------------------------------------------------------


def _window(request):
    try:
        days = int(request.GET.get("days", reporting.DEFAULT_WINDOW))
    except ValueError:
        days = reporting.DEFAULT_WINDOW
    return reporting.window(days)


@require_GET
def dashboard(request, model_admin):
    """Tokens, requests, errors and latency of replies over the last 7, 30 or 90 days."""
    _require_view(request, model_admin)
    win = _window(request)
    replies = reporting.replies(win)
    days = reporting.per_day(replies, win)
    context = _context(
        request, model_admin, "Usage dashboard",
        window=win, windows=reporting.WINDOWS,
        totals=reporting.totals(replies),
        active_users=reporting.active_users(replies),
        ttft=reporting.ttft_percentiles(replies),
        days=list(reversed(days)),
        token_chart=_chart([(day, usage.total_tokens) for day, usage in days]),
        request_chart=_chart([(day, usage.requests) for day, usage in days]),
        models=reporting.per_model(replies),
        top_users=reporting.top_users(replies),
        changelist_url=reverse("admin:chat_conversation_changelist"),
    )
    return TemplateResponse(request, "admin/chat/dashboard.html", context)


def _chart(points):
    bars, peak = reporting.bar_chart([(day.isoformat(), value) for day, value in points])
    # About eight date labels under the chart, whatever the window.
    step = max(1, len(bars) // 8)
    return {"bars": bars, "peak": peak, "label_step": step}


@require_GET
def dashboard_csv(request, model_admin):
    _require_view(request, model_admin)
    win = _window(request)
    name = f"usage-{timezone.localdate(win.start).isoformat()}-{win.days}d.csv"
    return _download(reporting.csv_text(reporting.replies(win)), "text/csv; charset=utf-8", name)


# --- Review inbox ------------------------------------------------------------------------------------------------

INBOX_STATES = {"open": "To review", "reviewed": "Reviewed", "all": "All"}
INBOX_KINDS = {"": "Everything", "negative": "Negative feedback", "error": "Errors", "interrupted": "Interrupted"}


def inbox_items(state="open", kind=""):
    """Replies that need a reviewer's eyes (negative feedback, errors, interruptions), newest first."""
    negative = Exists(Feedback.objects.filter(message=OuterRef("pk"), rating=Feedback.Rating.DOWN))
    reviewed = Exists(ReviewMark.objects.filter(message=OuterRef("pk")))
    needs_review = Q(status__in=[Message.Status.ERROR, Message.Status.INTERRUPTED]) | Q(has_negative=True)
    items = (
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .annotate(has_negative=negative, is_reviewed=reviewed)
        .filter(needs_review)
        .select_related("conversation__owner")
        .order_by("-created_at", "-id")
    )
    if kind == "negative":
        items = items.filter(has_negative=True)
    elif kind in (Message.Status.ERROR, Message.Status.INTERRUPTED):
        items = items.filter(status=kind)
    if state == "open":
        items = items.filter(is_reviewed=False)
    elif state == "reviewed":
        items = items.filter(is_reviewed=True)
    return items


@require_GET
def inbox(request, model_admin):
    _require_view(request, model_admin)
    state = request.GET.get("state") if request.GET.get("state") in INBOX_STATES else "open"
    kind = request.GET.get("kind") if request.GET.get("kind") in INBOX_KINDS else ""
    items = inbox_items(state, kind).prefetch_related(
        Prefetch("feedback", queryset=Feedback.objects.filter(rating=Feedback.Rating.DOWN).select_related("user")),
        Prefetch("review_marks", queryset=ReviewMark.objects.select_related("reviewer")),
    )
    page = Paginator(items, INBOX_PAGE_SIZE).get_page(request.GET.get("p"))
    context = _context(
        request, model_admin, "Review inbox",
        page=page, state=state, kind=kind, states=INBOX_STATES, kinds=INBOX_KINDS,
        can_review=request.user.has_perm("chat.add_reviewmark"),
        note_max=NOTE_MAX_CHARS,
    )
    return TemplateResponse(request, "admin/chat/inbox.html", context)


@require_POST
def mark_reviewed(request, model_admin, message_id):
    """Mark one reply reviewed, with an optional note, then go back where the reviewer was."""
    if not request.user.has_perm("chat.add_reviewmark"):
        raise PermissionDenied
    message = get_object_or_404(Message, public_id=message_id, role=Message.Role.ASSISTANT)
    note = request.POST.get("note", "").strip()[:NOTE_MAX_CHARS]
    ReviewMark.objects.create(message=message, reviewer=request.user, note=note)
    flash.success(request, "Marked reviewed.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        back = reverse("admin:chat_conversation_inbox")
    return redirect(back)
