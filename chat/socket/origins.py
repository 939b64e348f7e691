"""Which pages may open the conversation socket: the app's own origin, and the operator's CSRF_TRUSTED_ORIGINS.

A browser sends the cookie of the app with a WebSocket opened from any page, so the ``Origin`` header is the only
thing that tells the app's own page from another site's. The app's own origin is the scheme and host of the
handshake itself: the ``Host`` header (which must be in ALLOWED_HOSTS), with the scheme Django would see for the
same request (the router's header when SECURE_PROXY_SSL_HEADER is set, so https on Heroku). A wildcard in
ALLOWED_HOSTS (``.herokuapp.com``) is not trust in every other app under that domain; a ``*.`` entry in
CSRF_TRUSTED_ORIGINS is the operator's deliberate choice and is honoured as Django honours it for form posts.
Anything else, a missing Origin included (browsers always send one), is refused before the handshake is accepted,
as Channels' own validators refuse (an HTTP 403 to the handshake).
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": "80", "https": "443"}


class SameOriginValidator:
    """ASGI middleware for WebSocket scopes: pass the app's own origins to ``application``, deny the rest."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator serves WebSocket connections only")
        if is_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


def is_allowed(scope):
    """Whether the handshake's ``Origin`` is the origin of the request itself or a trusted one."""
    headers = _headers(scope)
    origin = _origin(headers.get("origin"))
    if origin is None:
        return False
    own = _own_origin(scope, headers)
    return origin == own or _trusted(origin)


def _headers(scope):
    """The handshake's headers by lower-case name (the first of repeated ones), decoded as HTTP says: latin-1."""
    found = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _origin(value):
    """``(scheme, host, port)`` of an origin as sent, the port spelled out; None if it is not an http(s) origin."""
    if not value:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path or parts.query or parts.username:
        return None
    # Spelled as split_domain_port spells the Host header: an IPv6 address in brackets.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, host, str(port) if port else DEFAULT_PORTS[parts.scheme]


def _own_origin(scope, headers):
    """The origin the handshake was addressed to, or None when its Host is not one of ALLOWED_HOSTS."""
    host = headers.get("host", "")
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = _scheme(scope, headers)
    return scheme, domain, port or DEFAULT_PORTS[scheme]


def _scheme(scope, headers):
    """http or https, as ``HttpRequest.scheme`` would say for the same request."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        # Django names the header as it appears in META (HTTP_X_FORWARDED_PROTO).
        value = headers.get(header.removeprefix("HTTP_").replace("_", "-").lower())
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def _trusted(origin):
    """Whether ``origin`` is one of CSRF_TRUSTED_ORIGINS: exactly, or under a ``scheme://*.domain`` entry."""
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in entry:
            if _origin(entry) == origin:
                return True
            continue
        parts = urlsplit(entry)
        netloc = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
        if parts.scheme == scheme and is_same_domain(netloc, parts.netloc.removeprefix("*")):
            return True
    return False
