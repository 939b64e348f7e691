"""What decoding an image will cost in memory, read from its header before any pixel is decoded.

The pixel caps alone do not bound memory: a 1.5 MB progressive CMYK JPEG of 100 MP made a worker grow by ~800 MB,
because libjpeg keeps every DCT coefficient of a progressive file (2 bytes each, at full size, whatever the draft
scale); Pillow opens every WebP through libwebp's animation decoder, which holds whole RGBA canvases.
"""

import math

from PIL import Image

# Bytes a decoded pixel takes in Pillow (1-bit, palette and grey take a byte; LA, RGB, CMYK and 32-bit take 4).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# bench/images.py: a 5400x5400 WebP added ~450 MB, about 16 bytes a pixel (two canvases in libwebp, Pillow's copy,
# the conversion).
WEBP_PIXEL_BYTES = 16
_COEFFICIENT_BYTES = 2


def decode_cost(img: Image.Image, original_size: tuple[int, int]) -> int:
    """Bytes needed at once to decode the first frame of ``img``, opened but not loaded.

    Call it after ``draft()``: ``img.size`` is then the size the decoder will produce, ``original_size`` the
    size in the file (libjpeg's coefficient buffers are at that size).
    """
    width, height = img.size
    if img.format == "WEBP":
        return width * height * WEBP_PIXEL_BYTES
    decoded = width * height * _PIXEL_BYTES.get(img.mode, 4)
    if img.format in ("JPEG", "MPO") and img.info.get("progressive"):
        decoded += _coefficient_bytes(original_size, getattr(img, "layer", []))
    return decoded


def _coefficient_bytes(size: tuple[int, int], components: list) -> int:
    """libjpeg's whole-image coefficient buffers: one 8x8 block of 2-byte values per block of each component."""
    if not components:
        return 0
    h_max = max(component[1] for component in components) or 1
    v_max = max(component[2] for component in components) or 1
    total = 0
    for _id, h_samp, v_samp, *_ in components:
        blocks_wide = math.ceil(math.ceil(size[0] * h_samp / h_max) / 8)
        blocks_high = math.ceil(math.ceil(size[1] * v_samp / v_max) / 8)
        total += blocks_wide * blocks_high * 64 * _COEFFICIENT_BYTES
    return total
