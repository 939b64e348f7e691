"""The owner reads and changes a conversation's model settings (chat/turns/options.py) as JSON.

Another user's conversation is a 404 (get_conversation_for_user).
"""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_http_methods

from chat.ownership import get_conversation_for_user
from chat.turns.options import SettingsForm, current, describe


@login_required
@require_http_methods(["GET", "POST"])
def conversation_settings(request, conversation_id):
    """GET: the settings, defaults, models and limits. POST (a form post of every field): replace the settings.

    A POST answers ``{"ok": true, "settings": {...}}``, or 400 ``{"errors": {field: [message, ...]}}`` having
    changed nothing.
    """
    conv = get_conversation_for_user(request.user, conversation_id)
    if request.method == "GET":
        return JsonResponse(describe(conv))
    form = SettingsForm(request.POST)
    if not form.is_valid():
        errors = {field: list(messages) for field, messages in form.errors.items()}
        return JsonResponse({"errors": errors}, status=400)
    form.save(conv)
    return JsonResponse({"ok": True, "settings": current(conv)})
