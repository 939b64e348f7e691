from django.urls import path

from chat.socket import consumer

websocket_urlpatterns = [
    path("ws/c/<uuid:conversation_id>/", consumer.ChatConsumer.as_asgi()),
]
