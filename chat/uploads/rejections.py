"""Why an upload is refused: ``ImageRejected`` and the messages it carries, each safe to show as is."""

NOT_AN_IMAGE = "This file is not an image."
DAMAGED = "This image is damaged or incomplete."
EMPTY = "This file is empty."
UNSUPPORTED = "{} images are not supported; please convert to JPEG or PNG."
PDF = "PDF files are not supported; please upload an image."
TOO_LARGE = "This file is too large (max {:g} MB)."
TOO_MANY_PIXELS = "This image's dimensions are too large (max {:g} megapixels)."
# Within the pixel caps but too costly to decode (a progressive JPEG, a big WebP), or the decoding process ran out
# of memory or time.
TOO_COMPLEX = "This image is too large or complex to process; please send a smaller or simpler version."


class ImageRejected(ValueError):
    """An upload we will not pass on; ``user_message`` says why, in words safe to show."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message
