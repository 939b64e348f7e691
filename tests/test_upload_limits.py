"""Oversized request bodies are refused before Django reads them, over real HTTP (uvicorn, as on Heroku)."""

import json
import socket
from urllib.parse import urlsplit

import pytest
from django.test import Client

from chat.standin.api import serve_in_thread
from chatsite.asgi import application
from chatsite.limits import MARGIN

LIMIT = 1024 * 1024
TOO_LARGE = {"error": "This file is too large (max 1 MB)."}


@pytest.fixture
def server(settings):
    settings.CHAT_MAX_UPLOAD_BYTES = LIMIT
    running = serve_in_thread(application)
    yield urlsplit(running.base_url)
    running.stop()


def exchange(address, head, chunks=()):
    """Send a request head and then body chunks (chunked encoding), stopping early if the server answers;
    returns (status, JSON body)."""
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(head.encode())
        try:
            for chunk in chunks:
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            if chunks:
                conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all (even before the last chunk): read on
        response = b""
        while data := conn.recv(65536):
            response += data
            if b"\r\n\r\n" in response and response.endswith(b"}"):
                break
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(server):
    head = (f"POST /attachments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n")

    assert exchange(server, head) == (413, TOO_LARGE)


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    head = ("POST /attachments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    chunks = [b"\x00" * 65536] * ((LIMIT + MARGIN) // 65536 + 8)

    assert exchange(server, head, chunks) == (413, TOO_LARGE)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_just_over_the_cap_is_refused_by_the_view(server, alice):
    client = Client()
    client.force_login(alice)
    session = client.cookies["sessionid"].value
    token = "a" * 32
    head = ("POST /attachments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Cookie: sessionid={session}; csrftoken={token}\r\nX-CSRFToken: {token}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")

    assert exchange(server, head, [b"\xff\xd8\xff" + b"\x00" * LIMIT]) == (413, TOO_LARGE)
