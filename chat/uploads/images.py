"""Turn an uploaded image into a small, metadata-free JPEG or PNG for the model.

Everything here works on bytes: the format is read from the content, never from a
file name or a client-supplied content type. Rejections raise ``ImageRejected``,
whose ``user_message`` is safe to show as is.
"""

import hashlib
import io
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageCms, ImageOps

from chat.uploads.cost import decode_cost
from chat.uploads.rejections import (  # re-exported: callers import the messages from here
    DAMAGED,
    EMPTY,
    NOT_AN_IMAGE,
    PDF,
    TOO_COMPLEX,
    TOO_LARGE,
    TOO_MANY_PIXELS,
    UNSUPPORTED,
    ImageRejected,
)
from chat.uploads.sniffing import sniff
from chat.uploads.strips import convert_and_reduce, resize_in_bands

__all__ = ["DAMAGED", "EMPTY", "NOT_AN_IMAGE", "PDF", "TOO_COMPLEX", "TOO_LARGE", "TOO_MANY_PIXELS", "UNSUPPORTED",
           "ImageRejected", "Limits", "NormalizedImage", "normalize_image", "pixel_limit"]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # settings.CHAT_MAX_UPLOAD_BYTES overrides
# Pixel caps, checked from the header before decoding. Only JPEG decodes at reduced scale (draft
# mode); PNG, GIF and WebP decode every pixel at full size, up to 4 bytes each, so their cap is lower.
MAX_PIXELS = 100_000_000  # JPEG; settings.CHAT_MAX_IMAGE_PIXELS overrides
MAX_PIXELS_LOSSLESS = 30_000_000  # PNG, GIF, WebP; settings.CHAT_MAX_IMAGE_PIXELS_LOSSLESS overrides
# Most bytes the decoder may need at once (chat/uploads/cost.py), checked from the header; the decoding process
# gets this much address space (chat/uploads/isolation.py). settings.CHAT_IMAGE_DECODE_MEMORY_MB overrides.
DECODE_MEMORY_MB = 140
MAX_LONG_SIDE = 1568  # Claude's sweet spot; larger images are scaled by the provider anyway
MAX_MEGAPIXELS = 1_150_000  # in pixels (1.15 MP), same source as MAX_LONG_SIDE
MAX_OUTPUT_BYTES = 3_750_000  # provider cap per image
JPEG_QUALITIES = (85, 75, 60)
# Above this many pixels an image is resampled in bands (chat/uploads/strips.py); a JPEG's draft decode stays below.
BANDED_PIXELS = 8_000_000  # tried in order while the output is over budget

# Pillow checks its own pixel ceiling inside Image.open, before we ever see the
# size, so it has to agree with ours or it would reject (89.5 MP by default)
# images we accept. Set once, deliberately, for the whole process; it is also why
# CHAT_MAX_IMAGE_PIXELS can lower the limit but not raise it, for every format.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_PILLOW_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
_OPEN_FORMATS = ["JPEG", "PNG", "GIF", "WEBP"]  # JPEG also yields MPO (phone cameras)
# Pillow reports malformed input through many exception types, not just OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)


@dataclass(frozen=True)
class Limits:
    """The caps an upload is checked against, read from settings in the web process and handed to the decoding
    process as they are (it never reads settings)."""

    upload_bytes: int = MAX_UPLOAD_BYTES
    pixels: int = MAX_PIXELS
    pixels_lossless: int = MAX_PIXELS_LOSSLESS
    decode_memory_mb: int = DECODE_MEMORY_MB

    @classmethod
    def current(cls) -> "Limits":
        return cls(
            upload_bytes=_setting("CHAT_MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES),
            pixels=_setting("CHAT_MAX_IMAGE_PIXELS", MAX_PIXELS),
            pixels_lossless=_setting("CHAT_MAX_IMAGE_PIXELS_LOSSLESS", MAX_PIXELS_LOSSLESS),
            decode_memory_mb=_setting("CHAT_IMAGE_DECODE_MEMORY_MB", DECODE_MEMORY_MB),
        )

    def pixels_for(self, fmt: str | None) -> int:
        """JPEG gets ``pixels`` because it decodes at reduced scale; every other format decodes at full size and
        gets ``pixels_lossless``, never more than the JPEG cap."""
        return self.pixels if fmt == "jpeg" else min(self.pixels, self.pixels_lossless)


@dataclass(frozen=True)
class NormalizedImage:
    data: bytes
    format: str  # "jpeg" or "png"
    content_type: str
    width: int
    height: int
    size: int
    sha256: str  # hex digest of ``data``
    original_format: str  # "jpeg", "png", "gif" or "webp"
    original_width: int
    original_height: int


def normalize_image(data: bytes, limits: Limits | None = None) -> NormalizedImage:
    """Validate ``data`` and re-encode it for the model.

    The result holds pixels only (no EXIF, GPS, ICC, XMP or comments), is the first
    frame of an animation, has EXIF orientation applied, is in sRGB, has a long side
    of at most MAX_LONG_SIDE and at most MAX_MEGAPIXELS pixels (never upscaled), and
    is a PNG when it has real transparency, else a JPEG, no larger than
    MAX_OUTPUT_BYTES. Raises ImageRejected for anything else. ``limits`` default to the settings'.

    This runs in the calling process, bounded by the header checks only: uploads go through
    ``chat.uploads.isolation``, which runs it in a process with capped memory.
    """
    limits = limits or Limits.current()
    img, original = open_checked(data, limits)
    with _pillow_errors(original[0], limits.pixels_for(original[0])):
        img.load()  # decode everything now: truncated files fail here, not later
    icc_profile = img.info.get("icc_profile")
    target = _target_size(original[1])
    img = _scale(convert_and_reduce(img, target, _working_mode), target)
    img = _orient(img)
    img = _to_srgb(img, icc_profile)
    return _encode(_pixels_only(img), original)


def _setting(name: str, default: int) -> int:
    try:
        return getattr(settings, name, default)
    except ImproperlyConfigured:  # scripts and benchmarks run without Django settings
        return default


def open_checked(data: bytes, limits: Limits) -> tuple[Image.Image, tuple[str, tuple[int, int]]]:
    """Open ``data`` and check it from its header alone, without decoding a pixel.

    Returns the image, opened (with draft scale set for a large JPEG) but not loaded, and its original
    (format, size). Raises ImageRejected for what is too large, too costly to decode, or not an image.
    """
    _check_upload_size(data, limits.upload_bytes)
    claimed = sniff(data)
    # catch_warnings is not thread-safe before Python 3.14: _check_pixels is the
    # real guard, Pillow's own check is the backstop.
    with warnings.catch_warnings(), _pillow_errors(claimed, limits.pixels_for(claimed)):
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
        original = (_PILLOW_FORMATS[img.format], img.size)
        _check_pixels(img.size, limits.pixels_for(original[0]))
        img.draft(None, _target_size(img.size))  # only the JPEG decoder honours this
        if decode_cost(img, original[1]) > limits.decode_memory_mb * 2**20:
            raise ImageRejected(TOO_COMPLEX)
    return img, original


def pixel_limit(fmt: str | None) -> int:
    """The most pixels accepted for an image in ``fmt`` ("jpeg", "png", ...), from the settings."""
    return Limits.current().pixels_for(fmt)


def _check_upload_size(data: bytes, limit: int) -> None:
    if not data:
        raise ImageRejected(EMPTY)
    if len(data) > limit:
        raise ImageRejected(TOO_LARGE.format(limit / 1024 / 1024))


@contextmanager
def _pillow_errors(claimed: str | None, limit: int):
    """Translate Pillow's exceptions into ImageRejected; let ImageRejected through."""
    try:
        yield
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(TOO_MANY_PIXELS.format(limit / 1e6)) from exc
    except MemoryError as exc:
        raise ImageRejected(TOO_COMPLEX) from exc
    except _DECODE_ERRORS as exc:
        if "out of memory" in str(exc).lower():  # libjpeg and zlib report a failed allocation as an OSError
            raise ImageRejected(TOO_COMPLEX) from exc
        raise ImageRejected(DAMAGED if claimed else NOT_AN_IMAGE) from exc


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    """Reject from the header alone, before any pixel is decoded."""
    if size[0] * size[1] > limit:
        raise ImageRejected(TOO_MANY_PIXELS.format(limit / 1e6))
    if 0 in size:
        raise ImageRejected(DAMAGED)


def _target_size(size: tuple[int, int]) -> tuple[int, int]:
    """The largest size within MAX_LONG_SIDE and MAX_MEGAPIXELS, same aspect, never larger."""
    width, height = size
    scale = min(1.0, MAX_LONG_SIDE / max(width, height), math.sqrt(MAX_MEGAPIXELS / (width * height)))
    # The epsilon undoes float error (1568 / 3000 * 3000 == 1567.99...); it is far too
    # small to lift either the long side or the integer pixel count over its limit.
    return max(1, math.floor(width * scale + 1e-6)), max(1, math.floor(height * scale + 1e-6))


def _working_mode(img: Image.Image) -> Image.Image:
    """Convert to L, LA, RGB, RGBA or CMYK (CMYK is left for _to_srgb)."""
    if img.mode.startswith("I"):
        # 16-bit grey: a direct convert("L") clips everything above 255 to white.
        return img.convert("I").point(lambda value: value / 257).convert("L")
    if img.mode in ("P", "PA") or "transparency" in img.info:
        return img.convert("RGBA")
    if img.mode == "1":
        return img.convert("L")
    if img.mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return img
    return img.convert("RGBA" if "A" in img.getbands() else "RGB")


def _scale(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    if img.width * img.height > BANDED_PIXELS:
        return resize_in_bands(img, size)
    # reducing_gap box-reduces first: much faster on big images, no visible loss.
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _orient(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation; done after scaling so the transpose is cheap."""
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        return img  # unreadable EXIF should not cost the user their photo


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(img: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Return an image in L, LA, RGB or RGBA whose colours mean sRGB.

    Metadata is dropped later, so an embedded profile (Display P3 from phones,
    CMYK press profiles) is applied here or its colours would shift.
    """
    if icc_profile and img.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            output_mode = "RGBA" if img.mode == "RGBA" else "RGB"
            return ImageCms.profileToProfile(img, source, _srgb_profile(), outputMode=output_mode)
        except (ImageCms.PyCMSError, *_DECODE_ERRORS):
            pass  # a broken profile is common enough; fall back to a plain conversion
    return img.convert("RGB") if img.mode == "CMYK" else img


def _pixels_only(img: Image.Image) -> Image.Image:
    """A copy carrying no ``info`` at all, so no encoder can write metadata back."""
    return Image.frombytes(img.mode, img.size, img.tobytes())


def _has_transparency(img: Image.Image) -> bool:
    return "A" in img.getbands() and img.getchannel("A").getextrema()[0] < 255


def _encode(img: Image.Image, original: tuple[str, tuple[int, int]]) -> NormalizedImage:
    if _has_transparency(img):
        fmt = "png"
    else:
        fmt = "jpeg"
        img = img.convert("L" if img.mode in ("L", "LA") else "RGB")
    img, data = _fit_budget(img, fmt)
    original_format, (original_width, original_height) = original
    return NormalizedImage(
        data=data,
        format=fmt,
        content_type=f"image/{fmt}",
        width=img.width,
        height=img.height,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original_format=original_format,
        original_width=original_width,
        original_height=original_height,
    )


def _fit_budget(img: Image.Image, fmt: str) -> tuple[Image.Image, bytes]:
    """Encode, lowering quality then size until the bytes fit the budget.

    The budget is 3/4 of MAX_OUTPUT_BYTES so that even the base64 text stays under
    the provider cap (whether it counts raw or encoded bytes is unverified).
    """
    budget = MAX_OUTPUT_BYTES * 3 // 4
    qualities = JPEG_QUALITIES if fmt == "jpeg" else (None,)
    while True:
        for quality in qualities:
            data = _save(img, fmt, quality)
            if len(data) <= budget:
                return img, data
        if img.size == (1, 1):
            return img, data  # unreachable with a real budget; only stops an endless loop
        smaller = (max(1, img.width * 3 // 4), max(1, img.height * 3 // 4))
        img = img.resize(smaller, Image.Resampling.LANCZOS)


def _save(img: Image.Image, fmt: str, quality: int | None) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        img.save(out, "JPEG", quality=quality, optimize=True)
    else:
        img.save(out, "PNG", compress_level=6)
    return out.getvalue()
