"""Conversations and their messages. Public ids are UUIDs; integer keys never leave the server."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from chat.tree import Tree

TITLE_MAX = 120


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(owner=user)

    def recent(self):
        return self.order_by("-updated_at", "-id")

    def active(self):
        return self.filter(archived_at__isnull=True)

    def archived(self):
        return self.filter(archived_at__isnull=False)

    def pinned_first(self):
        """Pinned conversations (most recently pinned first), then the rest by last activity."""
        return self.order_by(models.F("pinned_at").desc(nulls_last=True), "-updated_at", "-id")


class Conversation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=TITLE_MAX, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved forward by every new message so the sidebar can sort by last activity.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # Set by the owner from the sidebar; timestamps rather than booleans so pins keep the order they were made in.
    pinned_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Per-conversation model settings (chat/turns/options.py); blank or null means the operator's default.
    system_prompt = models.TextField(blank=True)
    model_id = models.CharField(max_length=100, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    prompt_caching = models.BooleanField(default=True)
    tools_enabled = models.BooleanField(default=True)
    thinking = models.BooleanField(default=False)
    thinking_budget = models.PositiveIntegerField(null=True, blank=True)

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
    # A streaming reply's upper bound of tokens (prompt + max_tokens), counted against its owner's daily
    # quota until the API reports the real usage.
    estimated_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with every flush of a streaming reply; a stale one means the process writing it died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The channel-layer name of the process generating this reply, so any process can reach it.
    worker = models.CharField(max_length=200, blank=True)
    # The model's extended thinking, kept apart from the answer.
    reasoning = models.TextField(blank=True)
    # The tool steps of a reply, in order: {"id", "name", "arguments", "result", "is_error"} each.
    tool_calls = models.JSONField(default=list, blank=True)
    # Conversations are trees (chat/tree.py): editing a message or regenerating a reply adds a sibling,
    # and ``selected`` marks the sibling shown. The visible conversation is the path of selected messages.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    selected = models.BooleanField(default=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="unique_client_id_per_conversation",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "status"]),
            # The stale-reply sweeper runs in every process every few seconds: it must not scan the table.
            models.Index(fields=["heartbeat_at"], condition=Q(status="streaming"), name="chat_msg_streaming_hb"),
        ]

    def __str__(self):
        return f"{self.role} {self.public_id}"

    def save(self, *args, root=False, **kwargs):
        """Save; a new message without a parent continues the visible conversation unless ``root`` (a new
        version of the conversation's first message)."""
        if self._state.adding and self.parent_id is None and not root:
            # Wherever it was created (imports, the shell, tests); the app's own turns name the parent.
            self.parent_id = Tree.of(Message.objects.filter(conversation_id=self.conversation_id)).leaf()
        super().save(*args, **kwargs)

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

    @property
    def usage(self):
        """Tokens and timings of a reply, as shown under it (each None until known)."""
        ttft, duration = self.time_to_first_token, self.duration
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_ms": round(ttft * 1000) if ttft is not None else None,
            "duration_ms": round(duration * 1000) if duration is not None and self.role == self.Role.ASSISTANT else None,
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


class AttachmentQuerySet(models.QuerySet):
    def for_display(self):
        """With the blob's size and type, without its bytes."""
        return self.select_related("blob").defer("blob__data")


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

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.filename or 'image'} ({self.public_id})"

    def get_absolute_url(self):
        return reverse("chat:attachment", args=[self.public_id])


# --- Review: feedback on replies, reviewers' marks, and the transcript audit log -------------------------------


class Feedback(models.Model):
    """One person's rating of one reply (a thumbs up or down, optionally with a comment)."""

    class Rating(models.IntegerChoices):
        UP = 1, "Helpful"
        DOWN = -1, "Not helpful"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="unique_feedback_per_user")]
        indexes = [models.Index(fields=["rating", "-created_at"])]
        verbose_name_plural = "feedback"

    def __str__(self):
        return f"{self.get_rating_display()} on {self.message.public_id}"


class ReviewMark(models.Model):
    """A reviewer's note that an item of the review inbox has been looked at."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="review_marks")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="review_marks"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"reviewed {self.message.public_id}"


class TranscriptView(models.Model):
    """Audit log: who opened or exported which transcript, searched message text or fetched an image, and when.

    The names and ids are copied so the record outlives the deletion of the account or the conversation. A search
    names no conversation (``detail`` holds the words searched); an image fetch names the image in ``detail``.
    """

    class Action(models.TextChoices):
        VIEW = "view"
        EXPORT = "export"
        SEARCH = "search"
        IMAGE = "image"

    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="transcript_views"
    )
    viewer_username = models.CharField(max_length=150)
    conversation = models.ForeignKey(
        Conversation, null=True, on_delete=models.SET_NULL, related_name="transcript_views"
    )
    conversation_public_id = models.UUIDField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.VIEW)
    detail = models.TextField(blank=True)
    viewed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-viewed_at", "-id"]

    def __str__(self):
        return f"{self.viewer_username} {self.action} {self.conversation_public_id or self.detail}"

    @classmethod
    def record(cls, user, conversations, action=Action.VIEW, detail=""):
        """Write one audit row per conversation for ``user`` (one query)."""
        cls.objects.bulk_create(
            cls(viewer=user, viewer_username=user.get_username(), conversation=conv,
                conversation_public_id=conv.public_id, action=action, detail=detail)
            for conv in conversations
        )

    @classmethod
    def record_search(cls, user, term):
        """Write one audit row naming what ``user`` searched for, in full."""
        cls.objects.create(viewer=user, viewer_username=user.get_username(), action=cls.Action.SEARCH, detail=term)

    @classmethod
    def record_image(cls, user, attachment):
        """Write one audit row for ``user`` fetching a sent image, naming it and its conversation."""
        cls.record(user, [attachment.message.conversation], cls.Action.IMAGE, detail=str(attachment.public_id))
