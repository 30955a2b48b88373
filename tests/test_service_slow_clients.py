"""Slow clients are timed out (issue 12, D14): raw sockets against a real uvicorn server.

A client that trickles its headers, never sends them, or stalls its body is cut off after
`client_timeout_seconds`, while a normal client on the same server is served.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

TIMEOUT = 1.0


@pytest.fixture
def server(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(research_turn)
    settings = service_settings(tmp_path, model.base_url, client_timeout_seconds=TIMEOUT)
    with ThreadServer(settings) as running:
        yield running


def _connect(server: ThreadServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.settings.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


def test_a_stalled_body_gets_408_and_the_connection_closes(server: ThreadServer) -> None:
    with _connect(server) as sock:
        head = (
            "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"query": "cap')  # 14 of the 100 bytes, then nothing
        started = time.monotonic()
        answer = _read_until_closed(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer and b"CLIENT_TIMEOUT_SECONDS" in answer
    assert TIMEOUT * 0.8 <= waited < TIMEOUT + 3


def test_a_body_trickled_byte_by_byte_is_cut_off(server: ThreadServer) -> None:
    body = b'{"query": "capital of Freedonia"}'
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        started = time.monotonic()
        answer = b""
        for byte in body:  # one byte every 0.2 s: the whole body would take ~6.6 s
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
            if time.monotonic() - started > TIMEOUT + 0.5:
                break
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"])
def test_headers_that_never_finish_are_cut_off(server: ThreadServer, sent: bytes) -> None:
    """No bytes at all, or a request line and then one more header byte at a time."""
    with _connect(server) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < TIMEOUT + 3:
            try:
                if sent:
                    sock.sendall(b"X")  # keeps the connection busy, never ends a header
                sock.settimeout(0.25)
                if sock.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:  # reset by the server: closed too
                closed = True
                break
        waited = time.monotonic() - started
    assert closed, "the server kept a connection whose headers never finished"
    assert TIMEOUT * 0.8 <= waited < TIMEOUT + 3


def test_normal_clients_and_keep_alive_still_work(server: ThreadServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):  # the same keep-alive connection, well inside the timeout
            r = client.post("/v1/search", json={"query": "capital of Freedonia", "k": 1})
            assert r.status_code == 200
        time.sleep(TIMEOUT * 1.5)  # idle past the timeout: the pool reconnects quietly
        assert client.get("/healthz").status_code == 200
