"""Convert, shrink and resample a big decoded image a strip at a time, never holding a second full-size copy.

A 30 MP palette PNG is 30 MB decoded, but converting it to RGBA at once takes 120 MB more, and a 16-bit grey one
goes through 32-bit integers (another 120 MB). Converted strip by strip and box-reduced as they go, only a strip
and the reduced image are ever held.
"""

import math
from collections.abc import Callable

from PIL import Image

STRIP_ROWS = 256
BAND_ROWS = 32
_LANCZOS_SUPPORT = 3.0
_PREMULTIPLIED = {"RGBA", "LA"}  # resized through RGBa / La
# Modes whose conversion to L, RGB or RGBA needs more bytes a pixel than the decoded image.
_EXPANDING_MODES = {"1", "P", "PA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
# The final resample keeps at least this ratio to the reduced image, as Pillow's reducing_gap does.
_REDUCING_GAP = 2


def convert_and_reduce(img: Image.Image, size: tuple[int, int], convert: Callable) -> Image.Image:
    """``convert(img)``, box-reduced by an integer factor that leaves it at least twice ``size``.

    The result is still to be resampled to ``size``; it is ``convert(img)`` itself when there is nothing to
    reduce or the conversion does not expand the pixels.
    """
    factor = min(img.width // size[0], img.height // size[1]) // _REDUCING_GAP
    if factor < 2 or not _expands(img):
        return convert(img)
    rows = factor * max(1, STRIP_ROWS // factor)  # a multiple of the factor: strips reduce exactly like the whole
    reduced = None
    for top in range(0, img.height, rows):
        part = convert(img.crop((0, top, img.width, min(top + rows, img.height)))).reduce(factor)
        if reduced is None:  # the mode is known once the first strip is converted
            reduced = Image.new(part.mode, (-(-img.width // factor), -(-img.height // factor)))
        reduced.paste(part, (0, top // factor))
    return reduced

def resize_in_bands(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``img`` resampled to ``size`` with Lanczos, BAND_ROWS output rows at a time.

    A whole resize holds an intermediate of the target width by the full source height (23 MB for a 30 MP
    image), and for RGBA a premultiplied full-size copy (120 MB); a band needs only the source rows under it and
    the filter's reach (Lanczos: 3 source rows per output row's span either side), so the bands join seamlessly.
    """
    scale_y = img.height / size[1]
    reach = math.ceil(_LANCZOS_SUPPORT * max(scale_y, 1.0)) + 1
    result = Image.new(img.mode, size)
    for top in range(0, size[1], BAND_ROWS):
        bottom = min(top + BAND_ROWS, size[1])
        first = max(0, math.floor(top * scale_y) - reach)
        last = min(img.height, math.ceil(bottom * scale_y) + reach)
        if img.mode in _PREMULTIPLIED:  # Pillow premultiplies the whole image it is given: give it the rows only
            rows, offset = img.crop((0, first, img.width, last)), first
        else:
            rows, offset = img, 0
        box = (0, top * scale_y - offset, img.width, bottom * scale_y - offset)
        result.paste(rows.resize((size[0], bottom - top), Image.Resampling.LANCZOS, box=box), (0, top))
    return result


def _expands(img: Image.Image) -> bool:
    return img.mode in _EXPANDING_MODES or "transparency" in img.info
