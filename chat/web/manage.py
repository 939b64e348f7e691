"""The owner's housekeeping of conversations: rename, pin, archive, delete, and the archived list.

Every endpoint answers JSON to ``fetch`` (``Accept: application/json``) and redirects a plain form post, so the
sidebar works with or without its script. Another user's conversation is a 404 (get_conversation_for_user).
"""

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from chat.models import TITLE_MAX, Conversation
from chat.ownership import get_conversation_for_user


def wants_json(request):
    return "application/json" in request.headers.get("Accept", "") and "text/html" not in request.headers.get(
        "Accept", ""
    )


def _done(request, conv, status=200, **extra):
    if wants_json(request):
        return JsonResponse({"id": str(conv.public_id), **_flags(conv), **extra}, status=status)
    return redirect(extra.get("redirect") or conv.get_absolute_url())


def _flags(conv):
    return {"title": conv.display_title, "pinned": conv.pinned_at is not None, "archived": conv.archived_at is not None}


def _error(request, conv, message):
    if wants_json(request):
        return JsonResponse({"error": message}, status=400)
    return redirect(conv.get_absolute_url())


def _set(conv, **fields):
    # A queryset update leaves updated_at alone: housekeeping is not activity and must not reorder the sidebar.
    Conversation.objects.filter(pk=conv.pk).update(**fields)
    for name, value in fields.items():
        setattr(conv, name, value)


@login_required
@require_POST
def rename(request, conversation_id):
    conv = get_conversation_for_user(request.user, conversation_id)
    title = " ".join(request.POST.get("title", "").split())
    if not 1 <= len(title) <= TITLE_MAX:
        return _error(request, conv, f"A title needs 1 to {TITLE_MAX} characters.")
    _set(conv, title=title)
    return _done(request, conv)


@login_required
@require_POST
def pin(request, conversation_id):
    """Pin (``pinned=1``, the default) or unpin (``pinned=0``)."""
    conv = get_conversation_for_user(request.user, conversation_id)
    _set(conv, pinned_at=timezone.now() if request.POST.get("pinned", "1") == "1" else None)
    return _done(request, conv)


@login_required
@require_POST
def archive(request, conversation_id):
    """Archive (``archived=1``, the default) or bring back (``archived=0``); archiving also unpins."""
    conv = get_conversation_for_user(request.user, conversation_id)
    if request.POST.get("archived", "1") == "1":
        _set(conv, archived_at=timezone.now(), pinned_at=None)
    else:
        _set(conv, archived_at=None)
    return _done(request, conv)


@login_required
@require_POST
def delete(request, conversation_id):
    """Delete the conversation with its messages, feedback and images (orphaned blobs go with their last use)."""
    conv = get_conversation_for_user(request.user, conversation_id)
    with transaction.atomic():
        conv.delete()
    if wants_json(request):
        return JsonResponse({"id": str(conversation_id), "deleted": True, "redirect": reverse("chat:index")})
    return redirect("chat:index")


@login_required
def archived(request):
    conversations = Conversation.objects.for_user(request.user).archived().order_by("-archived_at", "-id")
    return render(request, "chat/archived.html", {"conversations": conversations[:500]})
