"""Uploaded images: stored once, claimed by one message, served to their owner, cleaned up.

An attachment belongs to the user who uploaded it. It is a draft until a message of one of that user's
conversations claims it, and it can be claimed only once. Its bytes live in an ImageBlob shared by identical
uploads; the blob is deleted with its last attachment (a ``post_delete`` receiver, so cascades from a deleted
message, conversation or user are covered too).
"""

import asyncio
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache
from pathlib import PurePosixPath
from urllib.parse import unquote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from chat.models import Attachment, ImageBlob
from chat.uploads.isolation import normalize_isolated

MAX_PER_MESSAGE = 20  # the provider's limit of images per request
# Drafts never sent (a closed tab, a removed preview) are deleted this long after their upload.
DRAFT_TTL = timedelta(days=1)
UNAVAILABLE = "An attached image is no longer available. Remove it and attach it again."
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}


@cache
def _image_pool():
    """CHAT_IMAGE_DECODERS threads, each waiting on one decoding child: at most that many decodes at once in
    this process (each child may grow by CHAT_IMAGE_DECODE_MEMORY_MB); further uploads queue here, off the thread
    that runs the ORM for every page and socket."""
    return ThreadPoolExecutor(max_workers=max(1, settings.CHAT_IMAGE_DECODERS), thread_name_prefix="images")


class AttachmentUnavailable(Exception):
    """Some attachment ids do not name a draft of the conversation's owner; ``str()`` is safe to show."""


async def normalize(data):
    """``images.normalize_image`` in a decoding child, queued for a place on the image pool; raises ImageRejected."""
    seconds = settings.CHAT_IMAGE_DECODE_SECONDS
    return await asyncio.get_running_loop().run_in_executor(_image_pool(), normalize_isolated, data, None, seconds)


def save_upload(owner, image, filename):
    """Store a normalised image as a draft attachment of ``owner``; identical images share one blob."""
    purge_stale_drafts(owner)
    try:
        with transaction.atomic():
            return _create(owner, image, filename)
    except IntegrityError:
        # The blob was deleted with its last attachment between our lookup and our insert.
        with transaction.atomic():
            return _create(owner, image, filename)


def _create(owner, image, filename):
    blob, _ = ImageBlob.objects.get_or_create(
        sha256=image.sha256,
        defaults={"data": image.data, "content_type": image.content_type, "width": image.width,
                  "height": image.height, "size": image.size},
    )
    attachment = Attachment.objects.create(
        owner=owner, blob=blob, filename=clean_filename(filename), original_format=image.original_format,
        original_width=image.original_width, original_height=image.original_height,
    )
    return attachment


def claim(message, owner_id, public_ids):
    """Attach the drafts ``public_ids`` of the user ``owner_id`` to ``message``. All or nothing: raises
    AttachmentUnavailable unless every id names an unsent draft of that user. Call it inside the transaction
    that created ``message``, so that a refusal stores nothing."""
    if not public_ids:
        return
    # One conditional UPDATE: of two sends racing for one draft, only one can claim it.
    claimed = Attachment.objects.filter(public_id__in=public_ids, owner_id=owner_id, message__isnull=True).update(
        message=message
    )
    if claimed != len(set(public_ids)):
        raise AttachmentUnavailable(UNAVAILABLE)


def copy_to(source, message):
    """Give ``message`` the images of ``source`` (an edited message keeps its images); blobs are shared."""
    Attachment.objects.bulk_create(
        Attachment(
            owner_id=attachment.owner_id, message=message, blob_id=attachment.blob_id, filename=attachment.filename,
            original_format=attachment.original_format, original_width=attachment.original_width,
            original_height=attachment.original_height,
        )
        for attachment in source.attachments.order_by("created_at", "id")
    )


def delete_draft(owner, public_id):
    """Delete an unsent draft of ``owner``; True when there was one."""
    deleted, _ = Attachment.objects.filter(public_id=public_id, owner=owner, message__isnull=True).delete()
    return bool(deleted)


def purge_stale_drafts(owner=None):
    """Delete the drafts older than DRAFT_TTL of ``owner`` (runs with each of their uploads), or of everyone
    (``manage.py purge_drafts``, for users who never upload again). Returns how many were deleted."""
    drafts = Attachment.objects.filter(message__isnull=True, created_at__lt=timezone.now() - DRAFT_TTL)
    if owner is not None:
        drafts = drafts.filter(owner=owner)
    return drafts.delete()[1].get(Attachment._meta.label, 0)


def get_for_viewer(user, public_id):
    """The attachment with its bytes when ``user`` owns it or reviews transcripts, else None.

    Reviewing means what the admin requires to read a transcript: staff with the view permission (the
    ``reviewer`` group has it; a staff account outside it sees no conversations, so no images either).
    """
    if not user.is_authenticated:
        return None
    attachments = Attachment.objects.select_related("blob").filter(public_id=public_id)
    if not (user.is_staff and user.has_perm("chat.view_attachment")):
        attachments = attachments.filter(owner=user)
    return attachments.first()


@receiver(post_delete, sender=Attachment, dispatch_uid="chat.attachments.delete_unused_blob")
def delete_unused_blob(sender, instance, **kwargs):
    """Delete the blob of a deleted attachment once no attachment uses it."""
    try:
        with transaction.atomic():
            ImageBlob.objects.filter(pk=instance.blob_id, attachments__isnull=True).delete()
    except (IntegrityError, ProtectedError):
        pass  # an upload of the same image took it meanwhile: it is in use again


def clean_filename(raw):
    """The name the user gave the file, for display only: percent-decoded, without any folder or control
    character, at most 255 characters."""
    name = unicodedata.normalize("NFC", unquote(raw or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.strip()[:255]


def download_name(attachment):
    """A safe ASCII file name for Content-Disposition, with the extension of the stored (re-encoded) format."""
    stem = PurePosixPath(attachment.filename).stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._")[:100] or "image"
    return ascii_stem + _EXTENSIONS.get(attachment.blob.content_type, "")
