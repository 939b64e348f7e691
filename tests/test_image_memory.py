"""No upload, whatever its kind, makes the web process grow by more than 150 MB (issue 14, finding 1).

Each hostile file is real and valid, built here; the ones costly to decode are refused from their header or by
the decoding child's memory cap with one message, the rest are decoded a strip at a time and accepted.
"""

import asyncio
import ctypes
import io
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from chat.models import Attachment
from chat.uploads import attachments
from chat.uploads.images import Limits, normalize_image
from chat.uploads.isolation import decode_in_child
from chat.uploads.strips import resize_in_bands
from tests import hostile_images as hostile
from tests.uploads import upload

pytestmark = pytest.mark.django_db

BOUND_MB = 150
TOO_COMPLEX = "This image is too large or complex to process; please send a smaller or simpler version."


@pytest.fixture(scope="session")
def progressive_cmyk_100mp():
    return hostile.progressive_jpeg(10_000, "CMYK")


@pytest.fixture(scope="session")
def progressive_444_100mp():
    return hostile.progressive_jpeg(10_000)


HOSTILE = {
    "animated WebP 5400x5400": lambda: hostile.animated_webp(5_400),
    "16-bit grey PNG 30 MP": lambda: hostile.sixteen_bit_grey_png((6_000, 5_000)),
    "GIF, 30 MP screen, 1x1 frame": lambda: hostile.gif_with_tiny_frame((6_000, 5_000)),
    "palette PNG 30 MP": lambda: hostile.palette_png((6_000, 5_000)),
    "RGB PNG 30 MP": lambda: hostile.truecolour_png((6_000, 5_000)),
    "RGBA PNG 30 MP": lambda: hostile.truecolour_png((6_000, 5_000), "RGBA"),
}


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def growth_mb(action):
    """Run ``action`` and return (its result, how far this process's peak memory rose above where it was)."""
    # Freed heap that glibc keeps resident would be reused unseen by the next decode: give it back first.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (the peak) to the current resident size
    before = _status_kib("VmRSS")
    result = action()
    return result, (_status_kib("VmHWM") - before) / 1024


def test_progressive_cmyk_jpeg_of_100_mp_is_refused_without_growing_the_worker(alice_client, progressive_cmyk_100mp):
    response, grown = growth_mb(lambda: upload(alice_client, progressive_cmyk_100mp, "print.jpg"))

    assert (response.status_code, response.json()) == (400, {"error": TOO_COMPLEX})
    assert grown < BOUND_MB
    assert Attachment.objects.count() == 0


def test_progressive_444_jpeg_of_100_mp_is_refused_without_growing_the_worker(alice_client, progressive_444_100mp):
    response, grown = growth_mb(lambda: upload(alice_client, progressive_444_100mp, "poster.jpg"))

    assert (response.status_code, response.json()) == (400, {"error": TOO_COMPLEX})
    assert grown < BOUND_MB


def test_big_animated_webp_is_refused_from_its_header(alice_client):
    data = HOSTILE["animated WebP 5400x5400"]()

    response, grown = growth_mb(lambda: upload(alice_client, data, "loop.webp"))

    assert (response.status_code, response.json()) == (400, {"error": TOO_COMPLEX})
    assert grown < BOUND_MB


@pytest.mark.parametrize("kind", [kind for kind in HOSTILE if "WebP" not in kind])
def test_lossless_image_at_the_pixel_cap_is_accepted_within_the_bound(alice_client, kind):
    data = HOSTILE[kind]()

    response, grown = growth_mb(lambda: upload(alice_client, data, "big.png"))

    assert response.status_code == 201
    assert (response.json()["width"], response.json()["height"]) == (1174, 978)
    assert grown < BOUND_MB


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_the_decoding_child_stays_within_the_bound(kind):
    outcome = decode_in_child(HOSTILE[kind](), Limits(), seconds=30)

    assert outcome.peak_growth_bytes < BOUND_MB * 2**20


def test_a_child_past_its_memory_cap_answers_too_complex():
    # 60 MB passes the header's estimate for this file (30 MB decoded) but not the strips and the reduced copy.
    outcome = decode_in_child(hostile.palette_png((6_000, 5_000)), Limits(decode_memory_mb=60), seconds=30)

    assert (outcome.image, outcome.message) == (None, TOO_COMPLEX)
    assert outcome.peak_growth_bytes < 70 * 2**20


def test_a_child_with_no_memory_to_spare_is_reported_not_raised():
    outcome = decode_in_child(hostile.palette_png((600, 500)), Limits(decode_memory_mb=0), seconds=30)

    assert (outcome.image, outcome.message) == (None, TOO_COMPLEX)


def test_a_child_past_its_time_is_killed_and_answers_too_complex():
    outcome = decode_in_child(hostile.palette_png((6_000, 5_000)), Limits(), seconds=0.01)

    assert (outcome.image, outcome.message) == (None, TOO_COMPLEX)


def test_a_child_killed_mid_decode_answers_too_complex_and_the_next_upload_works(caplog):
    answers = []
    worker = threading.Thread(
        target=lambda: answers.append(decode_in_child(hostile.palette_png((6_000, 5_000)), Limits(), seconds=30))
    )
    worker.start()
    deadline = time.monotonic() + 10
    while not multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)  # what the kernel's OOM killer would do
    worker.join()

    assert (answers[0].image, answers[0].message) == (None, TOO_COMPLEX)
    assert "died without answering" in caplog.text
    assert decode_in_child(hostile.palette_png((60, 50)), Limits(), seconds=30).image.width == 60


def test_the_cost_cap_comes_from_settings(alice_client, settings):
    settings.CHAT_IMAGE_DECODE_MEMORY_MB = 20

    response = upload(alice_client, hostile.palette_png((6_000, 5_000)), "big.png")

    assert (response.status_code, response.json()) == (400, {"error": TOO_COMPLEX})


def test_a_progressive_photo_of_12_mp_is_accepted():
    result = normalize_image(hostile.progressive_jpeg(3_464, subsampling=2))

    assert (result.original_format, result.width, result.height) == ("jpeg", 1072, 1072)


def test_strips_give_the_same_picture_as_a_whole_conversion():
    img = Image.new("P", (6_000, 5_000), 0)
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.paste(1, (3_000, 0, 6_000, 5_000))  # blue right half

    result = Image.open(io.BytesIO(normalize_image(hostile.encode(img, "PNG")).data))

    assert result.size == (1174, 978)
    red, _, blue = result.getpixel((100, 500))
    assert red > 240 and blue < 15
    red, _, blue = result.getpixel((1100, 500))
    assert blue > 240 and red < 15


def test_uploads_wait_their_turn_for_a_decoder(alice_client, settings):
    data = [hostile.palette_png((3_000 + i, 2_000)) for i in range(3)]

    async def three_at_once():
        return await asyncio.gather(*(attachments.normalize(item) for item in data))

    results = asyncio.run(three_at_once())

    assert [r.original_width for r in results] == [3_000, 3_001, 3_002]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_resampling_in_bands_matches_a_whole_resize(mode):
    noise = Image.effect_noise((3_000, 2_000), 60)
    img = Image.merge("RGB", (noise, noise.transpose(Image.Transpose.FLIP_TOP_BOTTOM), noise.rotate(180))).convert(mode)

    banded = resize_in_bands(img, (1_238, 825))

    difference = ImageChops.difference(banded, img.resize((1_238, 825), Image.Resampling.LANCZOS))
    assert all(high <= 1 for _, high in difference.getextrema())  # rounding only
