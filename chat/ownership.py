"""The one ownership check, used by every view and the socket: another user's conversation is a 404."""

from django.http import Http404

from chat.models import Conversation


def get_conversation_for_user(user, public_id):
    """The one ownership check for views and sockets: another user's conversation is a 404."""
    if not user.is_authenticated:
        raise Http404
    try:
        return Conversation.objects.get(public_id=public_id, owner=user)
    except (Conversation.DoesNotExist, ValueError):
        raise Http404 from None
