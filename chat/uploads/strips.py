"""Convert and shrink a big decoded image a strip at a time, so the conversion never holds a full-size copy.

A 30 MP palette PNG is 30 MB decoded, but converting it to RGBA at once takes 120 MB more, and a 16-bit grey one
goes through 32-bit integers (another 120 MB). Converted strip by strip and box-reduced as they go, only a strip
and the reduced image are ever held.
"""

from collections.abc import Callable

from PIL import Image

STRIP_ROWS = 256
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

def _expands(img: Image.Image) -> bool:
    return img.mode in _EXPANDING_MODES or "transparency" in img.info
