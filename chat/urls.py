from django.urls import path

from . import feedback, manage_views, search_views, settings_views, transfer_views, views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/new/", views.create, name="create"),
    path("c/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("c/<uuid:conversation_id>/older/", views.older_messages, name="older"),
    path("c/<uuid:conversation_id>/rename/", manage_views.rename, name="rename"),
    path("c/<uuid:conversation_id>/pin/", manage_views.pin, name="pin"),
    path("c/<uuid:conversation_id>/archive/", manage_views.archive, name="archive"),
    path("c/<uuid:conversation_id>/delete/", manage_views.delete, name="delete"),
    path("c/<uuid:conversation_id>/settings/", settings_views.conversation_settings, name="settings"),
    path("c/<uuid:conversation_id>/export.md", transfer_views.export, {"extension": "md"}, name="export_md"),
    path("c/<uuid:conversation_id>/export.json", transfer_views.export, {"extension": "json"}, name="export_json"),
    path("archived/", manage_views.archived, name="archived"),
    path("import/", transfer_views.import_conversations, name="import"),
    path("search/", search_views.search, name="search"),
    path("m/<uuid:message_id>/feedback/", feedback.feedback, name="feedback"),
    path("attachments/", views.upload, name="upload"),
    path("attachments/<uuid:attachment_id>/", views.attachment, name="attachment"),
]
