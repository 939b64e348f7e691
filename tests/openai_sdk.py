"""What the tests of the stand-in API send it through the official openai SDK: the model, a question, a tool and
image parts. The client itself is the ``sdk`` fixture (tests/conftest.py)."""

import base64
import io

from PIL import Image

MODEL = "claude-4-5-sonnet"
ASK = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "kelvin"]}},
            "required": ["city", "unit"],
        },
    },
}


def image_url(kind="PNG", size=(3, 2)):
    """A data URL of a small red image in ``kind``, as a browser would send an attachment."""
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, kind)
    mime = {"PNG": "png", "GIF": "gif", "JPEG": "jpeg", "WEBP": "webp", "BMP": "bmp"}[kind]
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def image_part(url):
    return {"type": "image_url", "image_url": {"url": url}}
