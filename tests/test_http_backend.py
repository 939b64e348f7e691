"""The inference client's network backend (chat/inference/network.py): real sockets, plain and TLS, and their failures.

Besides the app's client on the stand-in API, each test runs its own tiny HTTP/1.1 server on asyncio streams, so
that it can misbehave in exactly one way.
"""

import asyncio
import socket
import ssl
import struct

import httpx
import pytest
import trustme
from httpx_sse import EventSource

from chat import inference
from chat.inference import network
from chat.standin.api import Reply
from tests.servers import free_port

pytestmark = pytest.mark.timeout(30)

LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)
EVENTS = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]


def asyncio_client(verify=True, **kwargs):
    """A client like the app's: its pool on AsyncioBackend."""
    return httpx.AsyncClient(transport=network.transport(LIMITS, verify=verify), **kwargs)


class Server:
    """An HTTP server on 127.0.0.1 whose every connection is handled by ``handle(reader, writer, server)``."""

    def __init__(self, handle, ssl_context=None):
        self.handle, self.ssl_context = handle, ssl_context
        self.connections, self.tasks = 0, set()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info):
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader, writer):
        self.connections += 1
        self.tasks.add(asyncio.current_task())
        try:
            await self.handle(reader, writer, self)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away first, or the TLS handshake failed
        except asyncio.CancelledError:
            pass  # by __aexit__; ending cancelled would make Python 3.11's start_server log an error
        finally:
            writer.transport.abort()


async def read_request(reader):
    await reader.readuntil(b"\r\n\r\n")  # the tests send no request body


def chunked(*parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


async def serve_events(reader, writer, server):
    """Answers every request on the connection with the three events."""
    while True:
        await read_request(reader)
        writer.write(SSE_HEAD + chunked(*EVENTS) + chunked(b""))
        await writer.drain()


async def read_events(client, url):
    async with client.stream("GET", url) as response:
        stream = response.extensions["network_stream"]
        assert isinstance(stream, network.AsyncioStream)
        info = {name: stream.get_extra_info(name) for name in ("ssl_object", "server_addr", "client_addr")}
        return [event.data async for event in EventSource(response).aiter_sse()], info


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def server_tls(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


# --- the app's client ------------------------------------------------------------------------------------------


@pytest.fixture
async def _close_shared_clients():
    yield
    await inference.aclose_clients()


async def test_the_app_client_streams_through_the_asyncio_backend(stand_in, monkeypatch, _close_shared_clients):
    connected = []
    connect_tcp = network.AsyncioBackend.connect_tcp

    async def spy(self, host, port, *args, **kwargs):
        connected.append((host, port))
        return await connect_tcp(self, host, port, *args, **kwargs)

    monkeypatch.setattr(network.AsyncioBackend, "connect_tcp", spy)
    stand_in.fake.enqueue(Reply(text="over asyncio streams"))
    events = [event async for event in inference.stream_chat([{"role": "user", "content": "Hello"}])]
    assert "".join(getattr(event, "text", "") for event in events) == "over asyncio streams"
    assert connected == [("127.0.0.1", int(stand_in.base_url.rsplit(":", 1)[1]))]


def test_the_pool_is_the_one_httpx_would_build_but_for_the_backend():
    """Guards the `_pool` replacement in network.transport against an httpx upgrade."""
    ours, theirs = network.transport(LIMITS)._pool, httpx.AsyncHTTPTransport(limits=LIMITS)._pool
    assert type(ours) is type(theirs) and vars(ours).keys() == vars(theirs).keys()
    plain = (int, float, str, bool, type(None), list, tuple)
    assert {k: v for k, v in vars(ours).items() if isinstance(v, plain)} == {
        k: v for k, v in vars(theirs).items() if isinstance(v, plain)}
    assert (ours._max_connections, ours._max_keepalive_connections, ours._keepalive_expiry) == (10, 5, 5.0)
    assert isinstance(ours._network_backend, network.AsyncioBackend)
    assert ours._ssl_context.verify_mode == ssl.CERT_REQUIRED and ours._ssl_context.check_hostname
    assert ours._ssl_context.get_ca_certs() == theirs._ssl_context.get_ca_certs() != []


# --- TLS -------------------------------------------------------------------------------------------------------


async def test_server_sent_events_over_https(ca, server_tls):
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with Server(serve_events, server_tls) as server, asyncio.timeout(10):
        async with asyncio_client(verify=trusting) as client:
            url = f"https://localhost:{server.port}/events"
            first, info = await read_events(client, url)
            assert first == ["one", "two", "three"]
            assert info["ssl_object"].version().startswith("TLS") and info["ssl_object"].getpeercert()["subjectAltName"]
            assert info["server_addr"][:2] == ("127.0.0.1", server.port) and info["client_addr"][0] == "127.0.0.1"
            assert (await read_events(client, url))[0] == first
        assert server.connections == 1  # the second request reused the TLS connection


async def test_an_untrusted_certificate_is_refused(server_tls):
    async with Server(serve_events, server_tls) as server, asyncio.timeout(10):
        async with asyncio_client() as client:  # certifi's CAs only
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://localhost:{server.port}/events")


async def test_a_server_that_never_completes_the_handshake_is_a_connect_timeout():
    async def silent(reader, writer, server):
        await asyncio.sleep(30)

    async with Server(silent) as server, asyncio.timeout(5):
        async with asyncio_client(timeout=httpx.Timeout(5, connect=0.2)) as client:
            with pytest.raises(httpx.ConnectTimeout):
                await client.get(f"https://127.0.0.1:{server.port}/")


# --- failures on plain TCP -------------------------------------------------------------------------------------


async def test_no_answer_is_a_read_timeout():
    async def silent(reader, writer, server):
        await read_request(reader)
        await asyncio.sleep(30)

    async with Server(silent) as server, asyncio.timeout(5):
        async with asyncio_client(timeout=httpx.Timeout(5, read=0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{server.port}/")


async def test_connection_refused_is_a_connect_error():
    async with asyncio_client() as client, asyncio.timeout(5):
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")


@pytest.mark.parametrize("how, error", [("close", httpx.RemoteProtocolError), ("reset", httpx.ReadError)])
async def test_a_server_gone_mid_body_is_an_error_not_a_hang(how, error):
    async def cut(reader, writer, server):
        await read_request(reader)
        writer.write(SSE_HEAD + chunked(EVENTS[0]))
        await writer.drain()
        await asyncio.sleep(0.1)  # the client has the first event and waits for more
        if how == "reset":
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    received = []
    async with Server(cut) as server, asyncio.timeout(5):
        async with asyncio_client() as client:
            with pytest.raises(error):
                async with client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
                    async for event in EventSource(response).aiter_sse():
                        received.append(event.data)
    assert received == ["one"]


async def test_an_idle_connection_the_server_closed_is_not_reused():
    closed = asyncio.Event()

    async def once(reader, writer, server):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst")
        await writer.drain()
        await asyncio.sleep(0.1)  # the client has put the connection back in its pool
        writer.close()
        await writer.wait_closed()
        closed.set()

    async with Server(once) as server, asyncio.timeout(5):
        async with asyncio_client() as client:
            url = f"http://127.0.0.1:{server.port}/"
            assert (await client.get(url)).text == "first"
            await closed.wait()
            await asyncio.sleep(0.05)  # the client's event loop has seen the FIN
            assert (await client.get(url)).text == "first"
    assert server.connections == 2
