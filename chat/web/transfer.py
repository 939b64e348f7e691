"""A user's own conversation as a download (Markdown or JSON, chat/transfer/exporter.py) and the JSON imported back."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from chat.models import Conversation
from chat.ownership import get_conversation_for_user
from chat.transfer import exporter, importer
from chat.web.manage import wants_json

_TYPES = {"md": "text/markdown; charset=utf-8", "json": "application/json; charset=utf-8"}


@login_required
def export(request, conversation_id, extension):
    """The conversation as an attachment download; ``extension`` is ``md`` or ``json`` (fixed by the URL)."""
    conv = get_conversation_for_user(request.user, conversation_id)
    conv = exporter.with_transcripts(Conversation.objects.filter(pk=conv.pk)).get()
    body = exporter.to_markdown(conv, request) if extension == "md" else exporter.to_json([conv], request)
    response = HttpResponse(body, content_type=_TYPES[extension])
    response["Content-Disposition"] = content_disposition_header(True, exporter.filename(conv, extension))
    return response


@login_required
@require_POST
def import_conversations(request):
    """Create the importer's own copies of the conversations in an uploaded export (multipart field ``file``).

    400 with ``{"error": message}`` (or a flash message and a redirect) for a missing, oversized or invalid
    file; nothing is created then.
    """
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise importer.ImportRejected("Choose an exported .json file to import.")
        if upload.size > importer.MAX_BYTES:
            raise importer.ImportRejected(importer.TOO_LARGE)
        created, notes = importer.create(request.user, importer.parse(upload.read(importer.MAX_BYTES + 1)))
    except importer.ImportRejected as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc)}, status=400)
        messages.error(request, str(exc))
        return redirect("chat:index")
    first = created[0]
    if wants_json(request):
        return JsonResponse(
            {"ids": [str(conv.public_id) for conv in created], "url": first.get_absolute_url(), "notes": notes},
            status=201,
        )
    for note in notes:
        messages.warning(request, note)
    return redirect(first)
