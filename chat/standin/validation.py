"""What the inference stand-in accepts and refuses: the request rules Heroku and the models behind it enforce,
and Heroku's error shape (``ApiError``) for everything it refuses.
"""

import base64
import binascii
import io
import re
import warnings

from PIL import Image, UnidentifiedImageError

KNOWN_MODELS = frozenset(
    {"claude-4-5-sonnet", "claude-4-5-haiku", "claude-sonnet-4-6", "claude-4-sonnet", "claude-3-7-sonnet"}
)
DEFAULT_MAX_TOKENS = 4096
MAX_IMAGES, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE = 20, int(3.75 * 1024 * 1024), 8000
ROLES = ("system", "user", "assistant", "tool")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "authorization_error",
               429: "rate_limit_error"}
DATA_URL = re.compile(r"data:image/(jpeg|png|gif|webp);base64,(.*)", re.S)


class ApiError(Exception):
    """An error response: ``payload`` is Heroku's error object unless the caller supplies a raw body."""

    def __init__(self, status: int, message: str, headers: dict | None = None, payload=None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.payload = payload if payload is not None else {"error": {"code": status, "message": message,
                                                                      "type": kind}}


def validate(body, models):
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required.")
    if models is not None and model not in models:
        if model in KNOWN_MODELS:
            raise ApiError(403, f"This key is not authorized to use model {model}: it is not provisioned.")
        raise ApiError(400, f"Unknown model: {model}.")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not _is_number(value) or not 0 <= value <= 1):
            raise ApiError(400, f"{name} must be a number between 0 and 1.")
    max_tokens = requested_max_tokens(body)
    if type(max_tokens) is not int or max_tokens < 1:
        raise ApiError(400, "max_tokens must be a positive integer.")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "stream must be a boolean.")
    _validate_thinking(body.get("extended_thinking"), max_tokens)
    _validate_tools(body.get("tools"), body.get("tool_choice"))
    _validate_messages(body.get("messages"))


def requested_max_tokens(body: dict):
    return DEFAULT_MAX_TOKENS if body.get("max_tokens") is None else body["max_tokens"]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate_thinking(thinking, max_tokens):
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        raise ApiError(400, "extended_thinking must be an object.")
    if not thinking.get("enabled"):
        return
    budget = thinking.get("budget_tokens")
    if type(budget) is not int or budget < 1024:
        raise ApiError(400, "extended_thinking.budget_tokens must be an integer of at least 1024.")
    if budget >= max_tokens:
        raise ApiError(400, "extended_thinking.budget_tokens must be less than max_tokens.")


def _validate_tools(tools, tool_choice):
    names = []
    for position, tool in enumerate(tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        valid = isinstance(name, str) and re.fullmatch(r"[\w-]{1,64}", name) and tool.get("type") == "function"
        if not valid:
            raise ApiError(400, f"tools[{position}] must be a function tool with a valid name.")
        names.append(name)
    if tool_choice is None or tool_choice in ("none", "auto", "required"):
        return
    chosen = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    if chosen not in names:
        raise ApiError(400, "tool_choice must be none, auto, required or a function named in tools.")


def _validate_messages(messages):
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list.")
    open_calls, images = set(), 0
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise ApiError(400, f"messages[{position}].role must be one of {', '.join(ROLES)}.")
        if role == "tool" and message.get("tool_call_id") not in open_calls:
            raise ApiError(400, f"messages[{position}] is a tool result without a matching assistant tool call.")
        if role != "tool":
            # A tool result must answer a call of the assistant message just before it.
            open_calls = {call.get("id") for call in message.get("tool_calls") or [] if isinstance(call, dict)}
        images += _validate_content(position, role, message.get("content"))
    if images > MAX_IMAGES:
        raise ApiError(400, f"Too many images: {images}; at most {MAX_IMAGES} per request.")


def _validate_content(position, role, content) -> int:
    """The number of images in one message's content; raises ApiError for anything the API would refuse."""
    if isinstance(content, str) or (content is None and role == "assistant"):
        return 0
    if not isinstance(content, list):
        raise ApiError(400, f"messages[{position}].content must be a string or a list of parts.")
    images = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        if kind != "image_url":
            raise ApiError(400, f"messages[{position}].content has an unsupported part.")
        if role != "user":
            raise ApiError(400, f"messages[{position}]: images are only allowed in user messages.")
        _validate_image(position, part.get("image_url"))
        images += 1
    return images


def _validate_image(position, image_url):
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    data = decode_data_url(url if isinstance(url, str) else "")
    if data is None:
        raise ApiError(400, f"messages[{position}]: images must be base64 data URLs of jpeg, png, gif or webp.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(400, f"messages[{position}]: an image is larger than 3.75 MB.")
    info = image_info(data)
    if info is None:
        raise ApiError(400, f"messages[{position}]: could not process image.")
    if max(info[1], info[2]) > MAX_IMAGE_SIDE:
        raise ApiError(400, f"messages[{position}]: an image is larger than 8000×8000 pixels.")


def decode_data_url(url: str) -> bytes | None:
    match = DATA_URL.fullmatch(url.strip())
    if not match:
        return None
    try:
        return base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from the image header only, or None when Pillow cannot identify it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.format or "unknown", image.width, image.height
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return None


