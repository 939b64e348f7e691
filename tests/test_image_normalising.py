"""What an accepted image becomes before it reaches the model: re-encoded, first frame only, orientation
applied, metadata dropped, scaled within the limits, JPEG unless transparency needs PNG.

Every input is built here from bytes: no fixture files, no downloads.
"""

import hashlib
import io
import os

import pytest
from PIL import Image, ImageCms

from chat.uploads import images
from chat.uploads.images import normalize_image
from tests.uploads import encode, exif_with_location, photo


def reopen(result):
    img = Image.open(io.BytesIO(result.data))
    img.load()
    return img


def assert_close(actual, expected, tolerance=6):
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), actual


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
