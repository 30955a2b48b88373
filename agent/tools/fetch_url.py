"""`fetch_url`: read one web page (off by default).

A model-chosen URL is untrusted input, so the tool only speaks http(s), resolves the
host itself and refuses loopback, private, link-local and other non-global addresses
unless the host is on the operator's allow-list, follows at most a few redirects (each
checked again), and caps both the bytes read and the time taken.

The host is resolved once per hop and the connection goes to one of the addresses that
passed the check (the URL is rewritten to the IP; the Host header, TLS SNI and
certificate check keep the original name). Letting the HTTP client resolve the name
again would let a DNS-rebinding host answer a public address to the check and a private
one to the connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agent.events import Source
from agent.tools.base import ToolContext, ToolError, ToolOutput

_MAX_REDIRECTS = 3
_ACCEPTED_ENCODINGS = ("gzip", "deflate")
# zlib window bits per content-encoding (deflate is the zlib format; +32 detects the header).
_DECODERS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": 32 + zlib.MAX_WBITS,
}
_PAGE_TEXT_CHARS = 20_000
# IPv6 forms whose last 32 bits are an IPv4 address: IPv4-compatible (RFC 4291,
# deprecated), IPv4-translated (RFC 2765) and the well-known NAT64 prefix (RFC 6052).
_EMBEDS_LOW_32 = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("64:ff9b::/96"),
)
# Ranges no public host lives in, which Python's `is_global` still calls global: the
# deprecated IPv4-compatible and site-local (RFC 3879) forms, IPv4-translated addresses,
# and local-use NAT64 (RFC 8215), whose IPv4 position depends on the operator's prefix
# length (on a NAT64 network it reaches 169.254.169.254), so it is refused whole.
_NEVER_PUBLIC_V6 = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("fec0::/10"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the host's addresses. Injectable so tests (or an operator) can control
# name resolution; the default asks the system resolver.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class FetchRefusedError(ToolError):
    """The URL is not allowed (scheme, address, size, type)."""


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class CheckedURL:
    """A URL that passed `check_url`, with the only addresses a fetch may connect to."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    def pinned(self, ip: IPAddress) -> httpx.URL:
        """The URL with its host replaced by `ip`, so the client does no resolving."""
        return self.url.copy_with(host=str(ip))


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The system's answer for `host` (getaddrinfo, off the event loop)."""
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve host {host!r}: {exc}") from exc
    # Scoped IPv6 answers ("fe80::1%eth0") carry a zone id ip_address() rejects.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _allow_listed(host: str, ips: Sequence[IPAddress], allow: Sequence[str]) -> bool:
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if ips and all(ip in net for ip in ips):
            return True
    return False


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """Every IPv4 address an IPv6 form carries: mapped, compatible, translated, 6to4,
    well-known NAT64 and both Teredo ends. A router or the kernel may deliver a packet
    for one of these to the IPv4 address, so it is what the policy must judge."""
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if any(ip in net for net in _EMBEDS_LOW_32):
        found.append(low)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return tuple(found)


def _blocked(ip: IPAddress) -> bool:
    """Non-global, multicast or a never-public IPv6 range, and for IPv6 also judged by
    every IPv4 address it embeds (`is_global` alone judges those by the IPv6 prefix)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            ip = ipaddress.IPv6Address(ip.compressed.split("%")[0])
        if any(ip in net for net in _NEVER_PUBLIC_V6):
            return True
        if any(_blocked(v4) for v4 in embedded_ipv4(ip)):
            return True
    return not ip.is_global or ip.is_multicast


async def _resolve(host: str, port: int, resolver: Resolver) -> tuple[IPAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    ips = tuple(dict.fromkeys(await resolver(host, port)))  # dedupe, keep the order
    if not ips:
        raise ToolError(f"cannot resolve host {host!r}: no addresses")
    return ips


async def check_url(
    url: str, allow: Sequence[str], resolver: Resolver = system_resolver
) -> CheckedURL:
    """Resolve `url`'s host once and raise FetchRefusedError unless it is http(s) and every
    address is public (or the host is allow-listed); connect only to the returned ones."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchRefusedError(f"URL {url!r} is not valid: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchRefusedError(f"only http and https URLs can be fetched, not {parsed.scheme!r}")
    host = parsed.host
    if not host:
        raise FetchRefusedError(f"URL {url!r} has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ips = await _resolve(parsed.raw_host.decode("ascii"), port, resolver)
    if not _allow_listed(host, ips, allow):
        for ip in ips:
            if _blocked(ip):
                raise FetchRefusedError(
                    f"refusing {host} ({ip}): loopback, private and link-local addresses are "
                    "blocked; an operator can allow-list the host in fetch_allow_hosts"
                )
    return CheckedURL(url=parsed, addresses=ips)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title, "\n".join(line for line in lines if line)


async def _send_pinned(client: httpx.AsyncClient, checked: CheckedURL) -> httpx.Response:
    """GET `checked.url` over a connection to one of its checked addresses (the next one
    when connecting fails, as a resolving client would), never to a fresh lookup."""
    headers = {
        "accept": "text/html, text/plain",
        "accept-encoding": ", ".join(_ACCEPTED_ENCODINGS),
        "host": checked.url.netloc.decode("ascii"),
    }
    # httpx sends `sni_hostname` as TLS SNI and verifies the certificate against it.
    extensions = {"sni_hostname": checked.url.raw_host.decode("ascii")}
    failure: httpx.ConnectError | None = None
    for ip in checked.addresses:
        request = client.build_request(
            "GET", checked.pinned(ip), headers=headers, extensions=extensions
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            failure = exc
    assert failure is not None  # check_url never returns an empty address list
    raise failure


class CappedDecoder:
    """Undo the page's content-encoding while counting decoded bytes, so a compressed
    bomb is refused after `max_bytes` of output, not after the client has inflated it
    (httpx decodes a whole network chunk at once: 64 KB of gzip can be 64 MB)."""

    def __init__(self, content_encoding: str, max_bytes: int, url: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in _DECODERS):
            raise FetchRefusedError(
                f"{url} is sent with content-encoding {content_encoding!r}; only gzip and "
                "deflate are accepted"
            )
        self._inflate = zlib.decompressobj(_DECODERS[codings[0]]) if codings else None
        self._left = max_bytes
        self._url = url
        self._max = max_bytes

    def _take(self, data: bytes) -> bytes:
        if len(data) > self._left:
            raise FetchRefusedError(f"{self._url} is larger than {self._max} bytes")
        self._left -= len(data)
        return data

    def feed(self, raw: bytes) -> bytes:
        if self._inflate is None:
            return self._take(raw)
        try:
            # At most one byte past the cap is ever inflated; the rest stays compressed.
            return self._take(self._inflate.decompress(raw, self._left + 1))
        except zlib.error as exc:
            raise ToolError(f"{self._url} sent a corrupt compressed body ({exc})") from exc

    def flush(self) -> bytes:
        if self._inflate is None:
            return b""
        return self._take(self._inflate.flush(self._left + 1))


async def _read_page(r: httpx.Response, url: str, max_bytes: int) -> FetchedPage:
    if r.status_code >= 400:
        raise ToolError(f"{url} answered HTTP {r.status_code}")
    kind = r.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and not (kind.startswith("text/") or kind.endswith("xml")):
        raise FetchRefusedError(f"{url} is {kind}, not a text or HTML page")
    decoder = CappedDecoder(r.headers.get("content-encoding", ""), max_bytes, url)
    body = bytearray()
    async for chunk in r.aiter_raw():
        body.extend(decoder.feed(chunk))
    body.extend(decoder.flush())
    text = body.decode(r.encoding or "utf-8", errors="replace")
    if kind in ("text/html", "application/xhtml+xml") or "<html" in text[:500].lower():
        title, text = html_to_text(text)
    else:
        title = ""
    return FetchedPage(url=url, title=title or url, text=text[:_PAGE_TEXT_CHARS])


async def fetch_page(
    url: str,
    *,
    allow: Sequence[str],
    max_bytes: int,
    timeout: float,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchedPage:
    """Fetch `url`, checking and pinning the address of every redirect hop."""
    tls = ssl_context or httpx.create_ssl_context()
    for _ in range(_MAX_REDIRECTS + 1):
        checked = await check_url(url, allow, resolver)
        # A client per hop: its pool is keyed by IP, so a shared one could carry a TLS
        # session verified for one host into a request for another. trust_env=False: a
        # proxy from the environment would connect by itself, not to the checked address.
        async with httpx.AsyncClient(
            verify=tls, timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            r = await _send_pinned(client, checked)
            try:
                if r.is_redirect and "location" in r.headers:
                    url = urljoin(url, r.headers["location"])
                    continue
                return await _read_page(r, url, max_bytes)
            finally:
                await r.aclose()
    raise ToolError(f"more than {_MAX_REDIRECTS} redirects starting from the given URL")


class FetchUrlArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., min_length=8, max_length=2000, description="An http(s) URL.")


class FetchUrlTool:
    name: ClassVar[str] = "fetch_url"
    description: ClassVar[str] = "Fetch a public web page as text; it becomes a citable source."
    args_model: ClassVar[type[BaseModel]] = FetchUrlArgs

    def __init__(self, resolver: Resolver = system_resolver) -> None:
        self.resolver = resolver

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutput:
        assert isinstance(args, FetchUrlArgs)
        cfg = ctx.config
        try:
            page = await asyncio.wait_for(
                fetch_page(
                    args.url,
                    allow=cfg.fetch_allow_hosts,
                    max_bytes=cfg.fetch_max_bytes,
                    timeout=cfg.fetch_timeout_seconds,
                    resolver=self.resolver,
                ),
                timeout=cfg.fetch_timeout_seconds * 2,
            )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise ToolError(f"could not fetch {args.url}: {type(exc).__name__} {exc}") from exc
        digest = hashlib.sha256(page.url.encode()).digest()
        pid = -(int.from_bytes(digest[:7], "big") + 1)  # negative: never a corpus passage id
        record = Source(
            number=0,
            passage_id=pid,
            doc_id=page.url,
            title=page.title,
            source=page.url,
            start=0,
            end=len(page.text),
            text=page.text,
        )
        return ToolOutput(passages=(record,))
