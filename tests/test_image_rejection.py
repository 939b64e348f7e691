"""Uploads that are not images, or too big, are refused before any pixel is decoded, with a message to show.

Every input is built here from bytes: no fixture files, no downloads.
"""

import os
import struct

import pytest
from PIL import Image

from chat.uploads import images
from chat.uploads.images import ImageRejected, normalize_image
from tests.uploads import PNG_SIGNATURE, encode, photo, png_header_only


def rejection(data):
    with pytest.raises(ImageRejected) as caught:
        normalize_image(data)
    return caught.value.user_message


def jpeg_header_claiming(width, height):
    """A real 16x16 JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_empty_file_is_rejected():
    assert rejection(b"") == "This file is empty."


def test_text_with_an_image_name_is_not_an_image():
    assert rejection(b"Meeting notes: buy milk.\n") == "This file is not an image."


def test_html_with_a_script_is_not_an_image():
    data = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    assert rejection(data) == "This file is not an image."


def test_svg_with_a_script_is_rejected_as_svg():
    data = b'\xef\xbb\xbf<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert rejection(data) == "SVG images are not supported; please convert to JPEG or PNG."


def test_png_signature_followed_by_garbage_is_damaged():
    assert rejection(PNG_SIGNATURE + os.urandom(200)) == "This image is damaged or incomplete."


def test_truncated_jpeg_is_damaged():
    data = encode(photo((400, 300)), "JPEG")
    assert rejection(data[: len(data) // 2]) == "This image is damaged or incomplete."


def test_heic_is_rejected_with_a_conversion_hint():
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    assert rejection(data) == "HEIC images are not supported; please convert to JPEG or PNG."


def test_avif_is_rejected_with_a_conversion_hint():
    data = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64
    assert rejection(data) == "AVIF images are not supported; please convert to JPEG or PNG."


def test_video_is_not_an_image():
    data = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
    assert rejection(data) == "This file is not an image."


def test_pdf_is_rejected():
    assert rejection(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n") == "PDF files are not supported; please upload an image."


def test_file_over_the_upload_cap_is_rejected():
    data = b"\xff\xd8\xff" + b"\x00" * (20 * 1024 * 1024)
    assert rejection(data) == "This file is too large (max 20 MB)."


def test_upload_cap_comes_from_settings(settings):
    settings.CHAT_MAX_UPLOAD_BYTES = 1024 * 1024
    data = encode(Image.new("RGB", (10, 10)), "PNG") + b"\x00" * (1024 * 1024)
    assert rejection(data) == "This file is too large (max 1 MB)."


def test_decompression_bomb_is_rejected_from_the_header():
    data = png_header_only(30_000, 30_000)
    assert len(data) < 200
    assert rejection(data) == "This image's dimensions are too large (max 30 megapixels)."


def test_png_just_over_the_lossless_pixel_limit_is_rejected():
    assert rejection(png_header_only(6_000, 5_001)) == "This image's dimensions are too large (max 30 megapixels)."


def test_jpeg_just_over_the_pixel_limit_is_rejected():
    data = jpeg_header_claiming(10_001, 10_000)
    assert rejection(data) == "This image's dimensions are too large (max 100 megapixels)."


def test_jpeg_over_the_lossless_limit_is_accepted():
    # 48 MP is fine for a JPEG: it decodes at reduced scale (libjpeg fills the missing scan data).
    result = normalize_image(jpeg_header_claiming(8_000, 6_000))
    assert (result.original_format, result.original_width, result.original_height) == ("jpeg", 8_000, 6_000)
    assert (result.width, result.height) == (1238, 928)


def test_pixel_limit_comes_from_settings(settings):
    settings.CHAT_MAX_IMAGE_PIXELS = 2_000_000
    assert rejection(png_header_only(2_000, 1_001)) == "This image's dimensions are too large (max 2 megapixels)."
    assert rejection(jpeg_header_claiming(2_000, 1_001)) == "This image's dimensions are too large (max 2 megapixels)."


def test_lossless_pixel_limit_comes_from_settings(settings):
    settings.CHAT_MAX_IMAGE_PIXELS_LOSSLESS = 1_000_000
    assert rejection(png_header_only(1_001, 1_000)) == "This image's dimensions are too large (max 1 megapixels)."
    assert images.pixel_limit("jpeg") == 100_000_000


def test_lossless_limit_never_exceeds_the_jpeg_limit(settings):
    settings.CHAT_MAX_IMAGE_PIXELS = 10_000_000
    settings.CHAT_MAX_IMAGE_PIXELS_LOSSLESS = 50_000_000
    assert [images.pixel_limit(fmt) for fmt in ("jpeg", "png", "gif", "webp")] == [10_000_000] * 4


def test_rejection_is_a_value_error_carrying_its_message():
    error = ImageRejected("This file is empty.")
    assert isinstance(error, ValueError)
    assert str(error) == error.user_message == "This file is empty."
