"""The inference error family, the messages it shows people, and how API error responses map onto it.

``str(error)`` is for a debugger (it can quote the model's output, so it is never logged: chat/logs.py);
``user_message`` is safe to show a person. ``retryable`` says whether the request may
be sent again (only ever before any of its reply was passed on), ``retry_after`` how long the server asked to wait.
"""

import httpx

from chat.inference import retry


class InferenceError(Exception):
    """Base of every failure. ``str(error)`` may quote what the API sent and is never logged; ``user_message`` is
    for people."""

    user_message = "The model is unavailable right now. Please try again in a moment."

    def __init__(self, detail, *, user_message=None, status=None, retry_after=None, retryable=False):
        super().__init__(detail)
        if user_message:
            self.user_message = user_message
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


class RateLimited(InferenceError):
    user_message = "The model is busy right now (rate limit reached). Please try again shortly."

    def __init__(self, detail, **kwargs):
        kwargs.setdefault("retryable", True)
        super().__init__(detail, **kwargs)


class AuthError(InferenceError):
    user_message = "The model service refused this site's access key. Please tell the site's administrator."


class BadRequest(InferenceError):
    user_message = "The model could not accept this request."


class Unavailable(InferenceError):
    pass


MODEL_NOT_PROVISIONED = (
    "This site is not allowed to use the model it asked for (it may not be provisioned). "
    "Please tell the site's administrator."
)
NOT_FOUND = "The model service was not found at the configured address. Please tell the site's administrator."
UNREACHABLE = "The model service is unavailable: it could not be reached. Please try again."
TOO_SLOW = "The model took too long to start its reply. Please try again."
CUT_OFF = "The reply was cut off before it finished. Please try again."
UNREADABLE = "The model service sent a reply that could not be read. Please try again."

_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "authorization_error": 403,
    "rate_limit_error": 429,
    "server_error": 500,
}


def from_response(response: httpx.Response, model: str) -> InferenceError:
    """The exception for a non-200 response whose body has been read."""
    try:
        payload = response.json().get("error")
    except (ValueError, AttributeError):
        payload = None
    if not isinstance(payload, dict):
        # Not Heroku's shape (a proxy's HTML page, say): worth a log line, not a message to a person.
        payload = {"raw": response.text[:200]}
    return from_payload(payload, response.status_code, response.headers, model)


def from_payload(payload, status, headers, model: str, in_stream: bool = False) -> InferenceError:
    """The exception for an API error, from the HTTP status or, inside a stream, the error's code or type."""
    if not isinstance(payload, dict):
        payload = {"message": str(payload)}
    message = str(payload.get("message") or "").strip()[:300]
    if status is None:
        code = payload.get("code")
        status = code if isinstance(code, int) else _TYPE_STATUS.get(payload.get("type") or code, 500)
    detail = f"HTTP {status}{' in stream' if in_stream else ''}: {message or payload.get('raw') or 'no message'}"
    if status == 429:
        retry_after = retry.header_delay(headers)
        return RateLimited(detail, status=status, retry_after=retry_after, user_message=_busy(retry_after))
    if status == 401:
        return AuthError(detail, status=status)
    if status == 403:
        return AuthError(f"{detail} (model {model})", status=status, user_message=MODEL_NOT_PROVISIONED)
    if status == 404:
        return Unavailable(detail, status=status, user_message=NOT_FOUND)
    if 400 <= status < 500:
        text = f"The model could not accept this request: {message}" if message else None
        return BadRequest(detail, status=status, user_message=text)
    return Unavailable(detail, status=status, retry_after=retry.header_delay(headers, use_resets=False), retryable=True)


def _busy(retry_after: float | None) -> str | None:
    if retry_after is None:
        return None
    return f"The model is busy right now (rate limit reached). Please try again in {max(1, round(retry_after))} s."
