"""fetch_url hardening (issue 12): IPv6 forms that embed a private address (D12) and
compressed bodies that inflate past the byte cap (D18), each against a real listener."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import ipaddress
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from agent.tools.base import ToolError
from agent.tools.fetch_url import (
    FetchRefusedError,
    IPAddress,
    check_url,
    embedded_ipv4,
    fetch_page,
)


@contextlib.contextmanager
def loopback_listener() -> Iterator[tuple[socket.socket, int]]:
    """A listening socket on 127.0.0.1 that nothing should ever connect to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


# IPv6 spellings of the listener's address (or of other never-public targets); each must
# be refused before a connection is attempted.
HOSTILE_V6 = [
    "::127.0.0.1",  # IPv4-compatible loopback (deprecated form)
    "::ffff:0:7f00:1",  # IPv4-translated loopback (SIIT)
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 around 169.254.169.254
    "64:ff9b:1:a9fe:a9:fe00::",  # the same, with the /48 layout of RFC 6052
    "64:ff9b::7f00:1",  # well-known NAT64 around 127.0.0.1
    "fec0::1",  # site-local (deprecated)
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1
]


@pytest.mark.parametrize("address", HOSTILE_V6)
async def test_ipv6_forms_embedding_private_targets_are_refused_before_connecting(
    address: str,
) -> None:
    with loopback_listener() as (sock, port):
        with pytest.raises(FetchRefusedError, match="loopback, private and link-local"):
            await fetch_page(f"http://[{address}]:{port}/", allow=(), max_bytes=10_000, timeout=2)

        async def resolver(host: str, port: int) -> list[IPAddress]:
            return [ipaddress.ip_address(address)]

        with pytest.raises(FetchRefusedError, match=r"refusing named\.test"):
            await fetch_page(
                f"http://named.test:{port}/",
                allow=(),
                max_bytes=10_000,
                timeout=2,
                resolver=resolver,
            )
        assert not _connected(sock)


def test_embedded_ipv4_reads_every_form() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for form in ("::127.0.0.1", "::ffff:0:7f00:1", "::ffff:127.0.0.1", "64:ff9b::7f00:1"):
        assert loopback in embedded_ipv4(ipaddress.IPv6Address(form)), form
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) == ()


async def test_a_public_ipv6_address_still_passes() -> None:
    checked = await check_url("https://[2606:4700::1111]/", allow=())
    assert checked.addresses == (ipaddress.ip_address("2606:4700::1111"),)


@contextlib.contextmanager
def compressed_site(body: bytes, encoding: str) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering every GET with `body` as `encoding`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-encoding", encoding)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may hang up at the cap
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/page.txt"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_a_gzip_bomb_is_refused_at_the_cap_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MB in ~64 KB
    with compressed_site(bomb, "gzip") as url:
        tracemalloc.start()
        try:
            with pytest.raises(FetchRefusedError, match="larger than 1000000 bytes"):
                await fetch_page(url, allow=("127.0.0.1",), max_bytes=1_000_000, timeout=10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # The cap's own buffer plus one raw chunk; inflating a chunk whole costs ~64 MB.
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB while refusing a gzip bomb"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda b: b)],
)
async def test_compressed_pages_within_the_cap_are_decoded(encoding: str, compress: object) -> None:
    text = "The river Brill is 212 km long.\n" * 200
    assert callable(compress)
    with compressed_site(compress(text.encode()), encoding) as url:
        page = await fetch_page(url, allow=("127.0.0.1",), max_bytes=1_000_000, timeout=10)
    assert page.text == text


async def test_an_unaccepted_encoding_or_a_corrupt_body_is_named() -> None:
    with (
        compressed_site(b"whatever", "br") as url,
        pytest.raises(FetchRefusedError, match="content-encoding 'br'"),
    ):
        await fetch_page(url, allow=("127.0.0.1",), max_bytes=1_000_000, timeout=10)
    with (
        compressed_site(b"not gzip at all", "gzip") as url,
        pytest.raises(ToolError, match="corrupt compressed body"),
    ):
        await fetch_page(url, allow=("127.0.0.1",), max_bytes=1_000_000, timeout=10)
