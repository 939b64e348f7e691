"""The only code that speaks HTTP to the inference API (HEROKU_INFERENCE.md); it knows nothing of models or sockets.

Callers use ``stream_chat`` and the typed events and errors re-exported here. The client calls INFERENCE_URL
whatever serves it; whether that is the built-in demo model is ``settings.INFERENCE_DEMO``.
"""

from chat.inference.client import aclose_clients, endpoint, stream_chat  # noqa: F401
from chat.inference.errors import AuthError, BadRequest, InferenceError, RateLimited, Unavailable  # noqa: F401
from chat.inference.events import Finish, ReasoningDelta, TextDelta, ToolCall, Usage  # noqa: F401
from chat.inference.retry import parse_duration  # noqa: F401

