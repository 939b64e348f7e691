"""What happens to an uploaded image before it reaches the model.

Every input is built here from bytes: no fixture files, no downloads.
"""

import hashlib
import io
import os
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms

from chat.uploads import images
from chat.uploads.images import ImageRejected, normalize_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(img, fmt, **params):
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def reopen(result):
    img = Image.open(io.BytesIO(result.data))
    img.load()
    return img


def rejection(data):
    with pytest.raises(ImageRejected) as caught:
        normalize_image(data)
    return caught.value.user_message


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


def jpeg_header_claiming(width, height):
    """A real 16x16 JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def photo(size):
    """Smooth gradients with a little noise, like a photo, cheap to build."""
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise((size[0] // 8, size[1] // 8), 30).resize(size)
    return Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def assert_close(actual, expected, tolerance=6):
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), actual


# Rejections -------------------------------------------------------------------


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


# Accepted images --------------------------------------------------------------


def test_small_image_is_reencoded_but_not_upscaled():
    result = normalize_image(encode(photo((64, 48)), "PNG"))

    assert (result.format, result.content_type) == ("jpeg", "image/jpeg")
    assert (result.width, result.height) == (64, 48)
    assert (result.original_format, result.original_width, result.original_height) == ("png", 64, 48)
    assert result.size == len(result.data)
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    assert reopen(result).format == "JPEG"


def test_gif_javascript_polyglot_comes_out_as_a_clean_image():
    # A 0x2A2F-pixel-wide GIF starts "GIF89a/*": the rest is a JS comment until "*/".
    gif = b"GIF89a" + encode(Image.new("P", (0x2A2F, 1)), "GIF")[6:]
    assert gif.startswith(b"GIF89a/*") and b"*/" not in gif
    polyglot = gif + b"*/=1;alert('polyglot');//"

    result = normalize_image(polyglot)

    assert result.format == "jpeg"
    assert b"alert" not in result.data and b"GIF89a" not in result.data
    assert reopen(result).size == (1568, 1)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animation_keeps_only_the_first_frame(fmt):
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)

    result = normalize_image(data)

    img = reopen(result)
    assert getattr(img, "n_frames", 1) == 1
    assert_close(img.getpixel((16, 16)), (255, 0, 0), tolerance=10)


def test_multi_picture_jpeg_from_a_phone_keeps_the_first_picture():
    first, second = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
    data = encode(first, "MPO", save_all=True, append_images=[second])

    result = normalize_image(data)

    assert result.original_format == "jpeg"
    assert_close(reopen(result).getpixel((32, 24)), (255, 0, 0))


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours():
    cmyk = Image.new("CMYK", (40, 20), (0, 255, 255, 0))  # red
    cmyk.paste((255, 0, 255, 0), (20, 0, 40, 20))  # green

    img = reopen(normalize_image(encode(cmyk, "JPEG")))

    assert img.mode == "RGB"
    assert_close(img.getpixel((5, 10)), (255, 0, 0))
    assert_close(img.getpixel((35, 10)), (0, 255, 0))


def test_16_bit_grey_png_stays_mid_grey():
    data = encode(Image.new("I;16", (16, 16), 0x8080), "PNG")
    assert data[24] == 16  # IHDR bit depth

    img = reopen(normalize_image(data))

    assert img.mode == "L"
    assert abs(img.getpixel((8, 8)) - 128) <= 2


def exif_with_location(orientation):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.ImageDescription] = "Taken at home"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 13.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 41.0)
    return exif


def test_exif_orientation_is_applied_and_all_metadata_dropped():
    stored = Image.new("RGB", (60, 40), "blue")
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # red top-left, as stored
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(stored, "JPEG", exif=exif_with_location(6), icc_profile=icc, comment=b"secret note")
    assert b"Taken at home" in data and b"secret note" in data

    result = normalize_image(data)

    img = reopen(result)
    assert (result.width, result.height) == img.size == (40, 60)
    assert (result.original_width, result.original_height) == (60, 40)
    assert_close(img.getpixel((35, 5)), (255, 0, 0), tolerance=30)  # rotated 90 degrees clockwise
    assert not img.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp"} & img.info.keys()
    for marker in (b"Exif", b"GPS", b"Taken at home", b"secret note", b"ICC_PROFILE", b"http://ns.adobe.com"):
        assert marker not in result.data


def test_orientation_is_applied_to_an_image_that_is_also_scaled():
    data = encode(photo((3000, 1000)), "JPEG", exif=exif_with_location(6))

    result = normalize_image(data)

    assert (result.width, result.height) == (522, 1568)


def test_large_transparent_png_stays_png_with_alpha():
    img = Image.new("RGBA", (3000, 2000), (30, 120, 200, 255))
    img.paste((0, 0, 0, 0), (0, 0, 1500, 2000))

    result = normalize_image(encode(img, "PNG"))

    out = reopen(result)
    assert (result.format, result.content_type, out.mode) == ("png", "image/png", "RGBA")
    assert out.size == (result.width, result.height) == (1313, 875)
    assert out.getpixel((10, 10))[3] == 0
    assert out.getpixel((1300, 860)) == (30, 120, 200, 255)


def test_transparent_palette_png_becomes_rgba_png():
    img = Image.new("P", (20, 20), 1)
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.paste(0, (0, 0, 10, 20))

    result = normalize_image(encode(img, "PNG", transparency=0))

    assert result.format == "png"
    assert reopen(result).getpixel((15, 5)) == (0, 0, 255, 255)


def test_alpha_channel_with_no_transparent_pixel_becomes_jpeg():
    result = normalize_image(encode(Image.new("RGBA", (20, 20), (10, 200, 10, 255)), "PNG"))
    assert result.format == "jpeg"


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4000, 3000), (1238, 928)), ((8000, 1000), (1568, 196)), ((1000, 1500), (875, 1313))],
)
def test_big_photo_is_scaled_within_both_limits(size, expected):
    result = normalize_image(encode(photo(size), "JPEG", quality=90))

    assert (result.width, result.height) == reopen(result).size == expected
    assert max(expected) <= 1568 and expected[0] * expected[1] <= 1_150_000


def test_webp_is_accepted():
    result = normalize_image(encode(photo((300, 200)), "WEBP"))
    assert (result.original_format, result.format, result.width) == ("webp", "jpeg", 300)


def test_noisy_transparent_image_is_shrunk_to_fit_the_budget():
    img = Image.frombytes("RGBA", (1200, 900), os.urandom(1200 * 900 * 4))

    result = normalize_image(encode(img, "PNG", compress_level=1))

    assert result.format == "png"
    assert result.size <= images.MAX_OUTPUT_BYTES * 3 // 4
    assert result.width < 1200 and result.height < 900


def test_jpeg_quality_drops_before_the_size_does(monkeypatch):
    data = encode(Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3)), "PNG")
    full_quality = normalize_image(data).size
    monkeypatch.setattr(images, "MAX_OUTPUT_BYTES", full_quality)

    result = normalize_image(data)

    assert result.size <= full_quality * 3 // 4
    assert (result.width, result.height) == (400, 300)
