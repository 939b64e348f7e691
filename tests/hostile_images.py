"""Real, valid images that cost far more memory to decode than their file size suggests (issue 14, finding 1).

Pure Pillow, no Django, so bench/images.py builds the same files the tests do. The 100 MP ones take seconds
to build: tests build them once per session.
"""

import io
import struct

from PIL import Image


def encode(img, fmt, **params):
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def progressive_jpeg(side, mode="RGB", subsampling=0):
    """A flat ``side`` x ``side`` progressive JPEG: a few MB at 100 MP, ~8 bytes a pixel to decode."""
    return encode(Image.new(mode, (side, side), "teal" if mode == "RGB" else (200, 40, 0, 10)), "JPEG",
                  progressive=True, subsampling=subsampling, quality=70)


def animated_webp(side):
    """A two-frame lossless WebP of ``side`` x ``side`` (Pillow decodes every WebP through libwebp's animator)."""
    frames = [Image.new("RGB", (side, side), colour) for colour in ("red", "blue")]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)


def sixteen_bit_grey_png(size):
    return encode(Image.new("I;16", size, 0x8080), "PNG", compress_level=1)


def palette_png(size):
    img = Image.new("P", size, 1)
    img.putpalette([255, 0, 0, 0, 0, 255])
    return encode(img, "PNG", compress_level=1)


def gif_with_tiny_frame(screen):
    """A GIF whose logical screen is ``screen`` but whose only frame is 1x1: tiny file, full-size canvas."""
    data = bytearray(encode(Image.new("P", (1, 1), 1), "GIF"))
    data[6:10] = struct.pack("<HH", *screen)  # the logical screen descriptor; the frame keeps its 1x1
    return bytes(data)


def truecolour_png(size, mode="RGB"):
    """A smooth RGB or RGBA PNG: 4 bytes a pixel decoded, 120 MB at the 30 MP cap, with nothing to convert."""
    return encode(Image.linear_gradient("L").resize(size).convert(mode), "PNG", compress_level=1)
