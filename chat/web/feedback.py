"""Thumbs up or down, with an optional comment, on a reply: only the conversation's owner may rate it."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.http import require_POST

from chat.models import Feedback, Message

MAX_COMMENT_CHARS = 2000


def get_reply_for_owner(user, public_id):
    """An assistant message of one of ``user``'s conversations; anything else is a 404."""
    try:
        return Message.objects.get(
            public_id=public_id, role=Message.Role.ASSISTANT, conversation__owner=user
        )
    except (Message.DoesNotExist, ValidationError, ValueError):
        raise Http404 from None


@login_required
@require_POST
def feedback(request, message_id):
    """Store or replace the user's rating (``rating`` 1 or -1, ``comment`` up to 2000 characters)."""
    message = get_reply_for_owner(request.user, message_id)
    rating = request.POST.get("rating")
    comment = request.POST.get("comment", "").strip()
    if rating not in ("1", "-1"):
        return JsonResponse({"error": "Rate with 1 (helpful) or -1 (not helpful)."}, status=400)
    if len(comment) > MAX_COMMENT_CHARS:
        return JsonResponse({"error": f"A comment is limited to {MAX_COMMENT_CHARS} characters."}, status=400)
    vote, _ = Feedback.objects.update_or_create(
        message=message, user=request.user, defaults={"rating": int(rating), "comment": comment}
    )
    return JsonResponse({"message": str(message.public_id), "rating": vote.rating, "comment": vote.comment})
