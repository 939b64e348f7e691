"""A strict Content-Security-Policy on every response: model output can neither run script nor load remote data."""

from django.utils.deprecation import MiddlewareMixin

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self' {sockets}; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """MiddlewareMixin makes it async-capable, so ASGI requests need no thread hop for it."""

    def process_response(self, request, response):
        # A view may set a stricter policy of its own (attachments are served with default-src 'none').
        if "Content-Security-Policy" not in response:
            host = request.get_host()
            # Older browsers do not count ws:/wss: as 'self', so the socket's origin is named explicitly.
            response["Content-Security-Policy"] = POLICY.format(sockets=f"wss://{host} ws://{host}")
        return response
