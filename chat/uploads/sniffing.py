"""What the first bytes of an upload claim to be: an accepted format, a known other one, or nothing.

Only used to choose an error message: Pillow still decides what the bytes are.
"""

from chat.uploads.rejections import NOT_AN_IMAGE, PDF, UNSUPPORTED, ImageRejected

_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
_UNSUPPORTED_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "Photoshop"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
)
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}


def sniff(data: bytes) -> str | None:
    """Return the accepted format the bytes claim to be, or None; raise ImageRejected for known others."""
    head = data[:64]
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"%PDF-"):
        raise ImageRejected(PDF)
    for signature, name in _UNSUPPORTED_SIGNATURES:
        if head.startswith(signature):
            raise ImageRejected(UNSUPPORTED.format(name))
    _reject_iso_media(data)
    _reject_markup(data)
    return None


def _reject_iso_media(data: bytes) -> None:
    """HEIC and AVIF are ISO media files; the brands in their ``ftyp`` box say which."""
    if data[4:8] != b"ftyp":
        return
    box_end = min(int.from_bytes(data[:4], "big"), len(data), 256)
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, box_end - 3, 4)}
    if brands & _AVIF_BRANDS:
        raise ImageRejected(UNSUPPORTED.format("AVIF"))
    if brands & _HEIF_BRANDS:
        raise ImageRejected(UNSUPPORTED.format("HEIC"))
    raise ImageRejected(NOT_AN_IMAGE)  # a video or other ISO media file


def _reject_markup(data: bytes) -> None:
    text = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        raise ImageRejected(UNSUPPORTED.format("SVG"))
