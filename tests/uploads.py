"""Helpers for tests of image attachments: upload through the endpoint, or store a draft directly."""

import io
from urllib.parse import quote

from django.urls import reverse
from PIL import Image

from chat.uploads import attachments
from chat.uploads.images import normalize_image


def png(size=(40, 30), colour="teal"):
    return encode(Image.new("RGB", size, colour), "PNG")


def encode(img, fmt, **params):
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def photo(size):
    """Smooth gradients with a little noise, like a photo, cheap to build."""
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise((size[0] // 8, size[1] // 8), 30).resize(size)
    return Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def upload(client, data, filename="image.png", **extra):
    """POST ``data`` as the raw body to the upload endpoint, the file name in X-Filename."""
    return client.post(
        reverse("chat:upload"), data=data, content_type="application/octet-stream",
        HTTP_X_FILENAME=quote(filename), **extra,
    )


def draft(owner, data=None, filename="photo.png"):
    """An unsent attachment of ``owner``, stored as the endpoint would store it."""
    return attachments.save_upload(owner, normalize_image(data or png()), filename)
