from django.urls import path

from chat.web import feedback, manage, pages, search, settings_dialog, transfer

app_name = "chat"

urlpatterns = [
    path("", pages.index, name="index"),
    path("c/new/", pages.create, name="create"),
    path("c/<uuid:conversation_id>/", pages.conversation, name="conversation"),
    path("c/<uuid:conversation_id>/older/", pages.older_messages, name="older"),
    path("c/<uuid:conversation_id>/rename/", manage.rename, name="rename"),
    path("c/<uuid:conversation_id>/pin/", manage.pin, name="pin"),
    path("c/<uuid:conversation_id>/archive/", manage.archive, name="archive"),
    path("c/<uuid:conversation_id>/delete/", manage.delete, name="delete"),
    path("c/<uuid:conversation_id>/settings/", settings_dialog.conversation_settings, name="settings"),
    path("c/<uuid:conversation_id>/export.md", transfer.export, {"extension": "md"}, name="export_md"),
    path("c/<uuid:conversation_id>/export.json", transfer.export, {"extension": "json"}, name="export_json"),
    path("archived/", manage.archived, name="archived"),
    path("import/", transfer.import_conversations, name="import"),
    path("search/", search.search, name="search"),
    path("m/<uuid:message_id>/feedback/", feedback.feedback, name="feedback"),
    path("attachments/", pages.upload, name="upload"),
    path("attachments/<uuid:attachment_id>/", pages.attachment, name="attachment"),
]
