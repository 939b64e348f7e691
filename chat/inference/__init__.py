"""The only code that speaks HTTP to the inference API (HEROKU_INFERENCE.md); it knows nothing of models or sockets.

Callers use ``stream_chat`` and the typed events and errors re-exported here.
"""

from chat.inference.client import (  # noqa: F401
    AuthError,
    BadRequest,
    Finish,
    InferenceError,
    RateLimited,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Unavailable,
    Usage,
    aclose_clients,
    endpoint,
    is_demo,
    parse_duration,
    stream_chat,
)
