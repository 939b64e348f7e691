"""Pages of the chat: the conversation page, creating a conversation, signing up, image attachments."""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_POST

from chat.live import frames
from chat.models import Attachment, Conversation, Message, TranscriptView
from chat.ownership import get_conversation_for_user
from chat.turns import options, records
from chat.uploads import attachments
from chat.uploads.images import TOO_LARGE, ImageRejected

SIDEBAR_SIZE = 100
_ATTACHMENTS = Prefetch("attachments", queryset=Attachment.objects.for_display())
# The bytes of an attachment never change (a new upload is a new attachment), so browsers may keep them.
_IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    # Opened on its own, the image gets no scripts or plugins, whatever its bytes look like. Inline styles
    # only let the browser's own image viewer centre and fit it; the bytes are always our re-encoded image.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


@login_required
def index(request):
    return _chat_page(request, None)


@login_required
def conversation(request, conversation_id):
    conv = get_conversation_for_user(request.user, conversation_id)
    records.expire_stale_replies(conv)
    return _chat_page(request, conv, at=_message_or_none(conv, request.GET.get("at")))


def _message_or_none(conv, public_id):
    if not public_id:
        return None
    try:
        return conv.messages.get(public_id=public_id)
    except (Message.DoesNotExist, ValidationError):
        return None


@login_required
@require_POST
def create(request):
    conv = Conversation.objects.create(owner=request.user)
    return JsonResponse(
        {"id": str(conv.public_id), "url": conv.get_absolute_url(), "title": conv.display_title}, status=201
    )


def _chat_page(request, conv, at=None):
    config = {
        "conversation": str(conv.public_id) if conv else None,
        "createUrl": reverse("chat:create"),
        "wsPrefix": "/ws/c/",
        "demo": settings.INFERENCE_DEMO,
        "model": options.model_id(conv) if conv else settings.INFERENCE_MODEL_ID,
        "maxChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "uploadUrl": reverse("chat:upload"),
        "maxAttachments": attachments.MAX_PER_MESSAGE,
        "maxUploadBytes": settings.CHAT_MAX_UPLOAD_BYTES,
    }
    context = {
        # Untitled conversations are ones never written to; they stay out of the sidebar.
        "conversations": Conversation.objects.for_user(request.user)
        .exclude(title="")
        .active()
        .pinned_first()[:SIDEBAR_SIZE],
        "conversation": conv,
        "chat_config": config,
        # Flash messages (an import's outcome); "messages" is the transcript on this page, (message, branch) pairs.
        "notices": get_messages(request),
        "messages": [],
    }
    if conv:
        context["messages"], context["has_older"] = _recent_messages(conv, at=at)
        context["usage_totals"] = records.usage_totals(conv)
    return render(request, "chat/chat.html", context)


def _recent_messages(conv, before=None, at=None):
    """The newest page of the visible conversation (older than ``before``, if given), oldest first, and
    whether more exist. With ``at`` the page reaches back to that message however old it is, so a search
    result can be shown in place with everything after it (the live transcript only ever appends at the end).
    """
    return records.visible_messages(conv, size=records.PAGE_SIZE, before=before, at=at)


@login_required
def older_messages(request, conversation_id):
    """Older messages as rendered HTML, for the transcript to prepend when the user scrolls up."""
    conv = get_conversation_for_user(request.user, conversation_id)
    try:
        before = conv.messages.get(public_id=request.GET.get("before"))
    except (Message.DoesNotExist, ValidationError):
        raise Http404 from None
    messages, has_older = _recent_messages(conv, before)
    html = render_to_string("chat/_messages.html", {"messages": messages}, request)
    return JsonResponse({"html": html, "has_older": has_older})


def signup(request):
    if request.user.is_authenticated:
        return redirect("chat:index")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:index")
    return render(request, "registration/signup.html", {"form": form})


@require_POST
async def upload(request):
    """Store one image sent as the raw request body, its name percent-encoded in ``X-Filename``.

    Answers 201 with the attachment (docs/protocol.md), or 401/413/400 with ``{"error": message}`` where the
    message is safe to show. Async so that decoding runs on the image pool, not on the ORM's thread.
    """
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "Log in again to attach images."}, status=401)
    limit = settings.CHAT_MAX_UPLOAD_BYTES
    if _content_length(request) > limit:
        return _too_large(limit)
    data = request.read(limit + 1)  # capped as well: the length may be missing (chunked) or wrong
    if len(data) > limit:
        return _too_large(limit)
    try:
        image = await attachments.normalize(data)
    except ImageRejected as exc:
        return JsonResponse({"error": exc.user_message}, status=400)
    # Django's request signals manage the connection here, so plain sync_to_async (not Channels' wrapper).
    saved = await sync_to_async(attachments.save_upload)(user, image, request.headers.get("X-Filename"))
    return JsonResponse(frames.attachment_data(saved), status=201)


def _too_large(limit):
    return JsonResponse({"error": TOO_LARGE.format(limit / 1024 / 1024)}, status=413)


def _content_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # the capped read still applies


@require_http_methods(["GET", "HEAD", "DELETE"])
def attachment(request, attachment_id):
    """The stored image, to its owner and to reviewers (a 404 for anyone else); DELETE removes an unsent draft.

    A reviewer's fetch is part of reading a transcript, so it writes an audit row; an unsent draft belongs to no
    transcript yet and is a 404 to everyone but its owner.
    """
    if request.method == "DELETE":
        if not request.user.is_authenticated or not attachments.delete_draft(request.user, attachment_id):
            raise Http404
        return HttpResponse(status=204)
    found = _viewable_attachment(request.user, attachment_id)
    etag = f'"{found.blob.sha256}"'
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        bytes(found.blob.data), content_type=found.blob.content_type
    )
    disposition = content_disposition_header(False, attachments.download_name(found))
    for name, value in {**_IMAGE_HEADERS, "ETag": etag, "Content-Disposition": disposition}.items():
        response[name] = value
    return response


def _viewable_attachment(user, attachment_id):
    """The attachment ``user`` may see, audited when a reviewer reads someone else's; else a 404."""
    found = attachments.get_for_viewer(user, attachment_id)
    if found is None or (found.owner_id != user.pk and found.message_id is None):
        raise Http404
    if found.owner_id != user.pk:
        TranscriptView.record_image(user, found)
    return found
