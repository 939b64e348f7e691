from django.apps import AppConfig


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"

    def ready(self):
        from chat.uploads import attachments  # noqa: F401  (connects the receiver that deletes unused image blobs)
