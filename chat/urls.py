from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/new/", views.create, name="create"),
    path("c/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("c/<uuid:conversation_id>/older/", views.older_messages, name="older"),
    path("attachments/", views.upload, name="upload"),
    path("attachments/<uuid:attachment_id>/", views.attachment, name="attachment"),
]
