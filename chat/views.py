"""Pages of the chat: the conversation page, creating a conversation, signing up."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import inference, store
from .models import Conversation

SIDEBAR_SIZE = 100


@login_required
def index(request):
    return _chat_page(request, None)


@login_required
def conversation(request, conversation_id):
    conv = store.get_conversation_for_user(request.user, conversation_id)
    store.expire_stale_replies(conv)
    return _chat_page(request, conv)


@login_required
@require_POST
def create(request):
    conv = Conversation.objects.create(owner=request.user)
    return JsonResponse(
        {"id": str(conv.public_id), "url": conv.get_absolute_url(), "title": conv.display_title}, status=201
    )


def _chat_page(request, conv):
    config = {
        "conversation": str(conv.public_id) if conv else None,
        "createUrl": reverse("chat:create"),
        "wsPrefix": "/ws/c/",
        "demo": inference.is_demo(),
        "model": settings.INFERENCE_MODEL_ID,
        "maxChars": settings.CHAT_MAX_MESSAGE_CHARS,
    }
    context = {
        # Untitled conversations are ones never written to; they stay out of the sidebar.
        "conversations": Conversation.objects.for_user(request.user).exclude(title="").recent()[:SIDEBAR_SIZE],
        "conversation": conv,
        "messages": list(conv.messages.all()) if conv else [],
        "chat_config": config,
    }
    return render(request, "chat/chat.html", context)


def signup(request):
    if request.user.is_authenticated:
        return redirect("chat:index")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:index")
    return render(request, "registration/signup.html", {"form": form})
