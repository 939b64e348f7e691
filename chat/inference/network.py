"""An httpcore network backend on plain asyncio streams, for the inference client's connection pool.

httpcore's default backend on asyncio goes through anyio, and every socket read pays for ``anyio.fail_after`` (a
CancelScope plus sniffio lookups) and anyio's SocketStream: about 40 µs of CPU per received server-sent event.
With this backend a micro-benchmark of 200 concurrent streams of 150 paced events used 74-83 µs of CPU per event
instead of 115-120. It plugs into httpcore's documented ``network_backend`` extension point and follows the semantics
of httpcore's own ``_backends/anyio.py``: timeouts and socket errors become httpcore's exceptions, which httpx maps
to its own (``httpx.ReadTimeout``, ``httpx.ConnectError``, ...), so callers see no difference.
"""

import asyncio
import socket
import ssl
import typing

import httpcore
import httpx
from httpcore._utils import is_socket_readable

# Reads are by size, never by line, so the limit only bounds what a reader buffers before it pauses the socket.
READ_LIMIT = 1 << 20
_EXTRA_INFO = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername", "socket": "socket"}


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)  # b"" at EOF
        except TimeoutError as exc:  # caught before OSError, of which it is a subclass
            raise httpcore.ReadTimeout(exc) from exc
        except OSError as exc:  # a reset, a TLS error: whatever ended the connection
            raise httpcore.ReadError(exc) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.WriteError(exc) from exc

    async def aclose(self) -> None:
        # close() sends what it can at once (a FIN, a TLS close_notify) and abort() drops the rest, so that a peer
        # which stopped reading, or never answers the close_notify (asyncio would wait 30 s for it), cannot hold the
        # caller. httpcore's anyio backend does not wait for the peer either.
        was_closing = self._writer.transport.is_closing()
        self._writer.close()
        self._writer.transport.abort()
        if was_closing:
            return  # closed by the peer, or by a failed TLS handshake, after which wait_closed() never returns
        try:
            await self._writer.wait_closed()
        except OSError:
            pass  # the connection was already broken: closed all the same

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException as exc:  # a timeout or a cancellation too: the stream is of no use any more
            await self.aclose()
            if isinstance(exc, TimeoutError):
                raise httpcore.ConnectTimeout(exc) from exc
            if isinstance(exc, OSError):  # ssl.SSLError (an untrusted certificate, ...) is one
                raise httpcore.ConnectError(exc) from exc
            raise
        # Same reader and writer, now over TLS. Python 3.11 leaves the reader pausing the raw socket when it holds
        # too much (CPython gh-114921): that holds back the encrypted bytes instead, which throttles just as well.
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # httpcore asks this of an idle keep-alive connection, which has nothing to read unless the server
            # closed it (or sent junk): then it must not be reused. asyncio reads the socket eagerly, so what the
            # reader already holds counts first (StreamReader has no public way to ask for its buffer), then the socket.
            reader = self._reader
            return (reader.at_eof() or reader.exception() is not None or bool(reader._buffer)
                    or is_socket_readable(self._writer.get_extra_info("socket")))
        return self._writer.get_extra_info(_EXTRA_INFO[info]) if info in _EXTRA_INFO else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[tuple] | None = None) -> httpcore.AsyncNetworkStream:
        local_addr = None if local_address is None else (local_address, 0)
        # Addresses are tried one after the other (anyio races them 0.25 s apart): Python 3.11's happy eyeballs
        # waits with a wait_for that can swallow a cancellation (CPython gh-86296).
        opening = asyncio.open_connection(host, port, limit=READ_LIMIT, local_addr=local_addr)
        # A request goes out as separate writes (headers, then body), which Nagle's algorithm with a delayed ACK
        # can hold back. asyncio already sets TCP_NODELAY on TCP sockets; this does not depend on it.
        return await _connect(opening, timeout, [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1), *(socket_options or ())])

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[tuple] | None = None) -> httpcore.AsyncNetworkStream:
        return await _connect(asyncio.open_unix_connection(path, limit=READ_LIMIT), timeout, socket_options or ())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(opening: typing.Awaitable, timeout: float | None,
                   socket_options: typing.Iterable[tuple]) -> AsyncioStream:
    try:
        async with asyncio.timeout(timeout):
            stream = AsyncioStream(*await opening)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(exc) from exc
    except OSError as exc:  # refused, unreachable, a name that does not resolve
        raise httpcore.ConnectError(exc) from exc
    try:
        for option in socket_options:
            stream.get_extra_info("socket").setsockopt(*option)
    except OSError as exc:
        await stream.aclose()
        raise httpcore.ConnectError(exc) from exc
    return stream


def transport(limits: httpx.Limits, verify: ssl.SSLContext | bool = True) -> httpx.AsyncHTTPTransport:
    """What ``httpx.AsyncHTTPTransport(verify=verify, limits=limits)`` makes, with its pool on AsyncioBackend."""
    ssl_context = httpx.create_ssl_context(verify=verify)  # certifi, or SSL_CERT_FILE / SSL_CERT_DIR, as httpx does
    result = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
    # httpx 0.28 (pinned in requirements.txt) has no parameter for the network backend, so the pool it just built is
    # replaced by one with the same settings plus the backend. That relies on httpx's private `_pool` and on how it
    # builds it: tests/test_http_backend.py compares the two pools and checks requests really go through this one.
    result._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=AsyncioBackend(),
    )
    return result
