"""Helpers for tests of image attachments: images built from bytes, an upload through the endpoint, a draft
stored directly."""

import io
import struct
import zlib
from urllib.parse import quote

from django.urls import reverse
from PIL import ExifTags, Image

from chat.uploads import attachments
from chat.uploads.images import normalize_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width, height):
    """A 1-bit PNG that claims width x height but carries a tiny IDAT.

    Decoding it would fail as truncated, so a "dimensions" rejection proves the
    check happened from the header, before any pixel was decoded.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def exif_with_location(orientation):
    """EXIF with ``orientation`` and what must never reach the model or another user: a description, a GPS fix."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.ImageDescription] = "Taken at home"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 13.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 41.0)
    return exif


def upload(client, data, filename="image.png", **extra):
    """POST ``data`` as the raw body to the upload endpoint, the file name in X-Filename."""
    return client.post(
        reverse("chat:upload"), data=data, content_type="application/octet-stream",
        HTTP_X_FILENAME=quote(filename), **extra,
    )


def draft(owner, data=None, filename="photo.png"):
    """An unsent attachment of ``owner``, stored as the endpoint would store it."""
    return attachments.save_upload(owner, normalize_image(data or png()), filename)
