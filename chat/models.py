"""Conversations and their messages. Public ids are UUIDs; integer keys never leave the server."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

TITLE_MAX = 120


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(owner=user)

    def recent(self):
        return self.order_by("-updated_at", "-id")


class Conversation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=TITLE_MAX, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved forward by every new message so the sidebar can sort by last activity.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self):
        return self.display_title

    @property
    def display_title(self):
        return self.title or "New chat"

    @property
    def group_name(self):
        """Channel-layer group of the processes that have a socket open on this conversation."""
        return f"conv.{self.public_id.hex}"

    def get_absolute_url(self):
        return reverse("chat:conversation", args=[self.public_id])


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        ERROR = "error"
        INTERRUPTED = "interrupted"

    FINISHED = (Status.COMPLETE, Status.STOPPED, Status.ERROR, Status.INTERRUPTED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    # The idempotency key a browser sends with a user message, so a resend is stored once.
    client_id = models.UUIDField(null=True, blank=True)
    model = models.CharField(max_length=100, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with every flush of a streaming reply; a stale one means the process writing it died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The channel-layer name of the process generating this reply, so any process can reach it.
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="unique_client_id_per_conversation",
            ),
        ]
        indexes = [models.Index(fields=["conversation", "status"])]

    def __str__(self):
        return f"{self.role} {self.public_id}"

    @property
    def total_tokens(self):
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    @property
    def time_to_first_token(self):
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.created_at).total_seconds()

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()

    def as_frame(self, *, seq=0, content=None):
        """The JSON shape of a message in the WebSocket protocol (docs/protocol.md)."""
        return {
            "id": str(self.public_id),
            "role": self.role,
            "status": self.status,
            "content": self.content if content is None else content,
            "error": self.error,
            "seq": seq,
            "client_id": str(self.client_id) if self.client_id else None,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
            "created": self.created_at.isoformat(),
        }


class ImageBlob(models.Model):
    """Normalised image bytes (our own re-encoded output), stored once per distinct content.

    Kept in the database because Heroku's disk is ephemeral and not shared between dynos.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    data = models.BinaryField()
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.content_type} {self.width}×{self.height} {self.sha256[:12]}"


class Attachment(models.Model):
    """An image a user uploaded; attached to one of their messages once sent."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    blob = models.ForeignKey(ImageBlob, on_delete=models.PROTECT, related_name="attachments")
    filename = models.CharField(max_length=255, blank=True)
    original_format = models.CharField(max_length=16, blank=True)
    original_width = models.PositiveIntegerField(null=True, blank=True)
    original_height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.filename or 'image'} ({self.public_id})"

    def get_absolute_url(self):
        return reverse("chat:attachment", args=[self.public_id])
