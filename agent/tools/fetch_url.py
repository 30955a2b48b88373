"""`fetch_url`: read one web page (off by default).

A model-chosen URL is untrusted input, so the tool only speaks http(s), resolves the
host itself and refuses loopback, private, link-local and other non-global addresses
unless the host is on the operator's allow-list, follows at most a few redirects (each
checked again), and caps both the bytes read and the time taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agent.state import SourceRecord
from agent.tools.base import ToolContext, ToolError, ToolOutput

_MAX_REDIRECTS = 3
_PAGE_TEXT_CHARS = 20_000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefusedError(ToolError):
    """The URL is not allowed (scheme, address, size, type)."""


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str
    title: str
    text: str


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


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve host {host!r}: {exc}") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_url(url: str, allow: Sequence[str]) -> None:
    """Raise FetchRefusedError unless `url` is http(s) to a public (or allow-listed) host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefusedError(f"only http and https URLs can be fetched, not {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise FetchRefusedError(f"URL {url!r} has no host")
    ips = await _resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    if _allow_listed(host, ips, allow):
        return
    for ip in ips:
        if not ip.is_global or ip.is_multicast:
            raise FetchRefusedError(
                f"refusing {host} ({ip}): loopback, private and link-local addresses are "
                "blocked; an operator can allow-list the host in fetch_allow_hosts"
            )


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title, "\n".join(line for line in lines if line)


async def fetch_page(
    url: str, *, allow: Sequence[str], max_bytes: int, timeout: float
) -> FetchedPage:
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client:
        for _ in range(_MAX_REDIRECTS + 1):
            await check_url(url, allow)
            async with client.stream("GET", url, headers={"accept": "text/html, text/plain"}) as r:
                if r.is_redirect and "location" in r.headers:
                    url = urljoin(url, r.headers["location"])
                    continue
                if r.status_code >= 400:
                    raise ToolError(f"{url} answered HTTP {r.status_code}")
                kind = r.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind and not (kind.startswith("text/") or kind.endswith("xml")):
                    raise FetchRefusedError(f"{url} is {kind}, not a text or HTML page")
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise FetchRefusedError(f"{url} is larger than {max_bytes} bytes")
                text = body.decode(r.encoding or "utf-8", errors="replace")
                if kind in ("text/html", "application/xhtml+xml") or "<html" in text[:500].lower():
                    title, text = html_to_text(text)
                else:
                    title = ""
                return FetchedPage(url=url, title=title or url, text=text[:_PAGE_TEXT_CHARS])
    raise ToolError(f"more than {_MAX_REDIRECTS} redirects starting from the given URL")


class FetchUrlArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., min_length=8, max_length=2000, description="An http(s) URL.")


class FetchUrlTool:
    name: ClassVar[str] = "fetch_url"
    description: ClassVar[str] = "Fetch a public web page as text; it becomes a citable source."
    args_model: ClassVar[type[BaseModel]] = FetchUrlArgs

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
                ),
                timeout=cfg.fetch_timeout_seconds * 2,
            )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise ToolError(f"could not fetch {args.url}: {type(exc).__name__} {exc}") from exc
        digest = hashlib.sha256(page.url.encode()).digest()
        pid = -(int.from_bytes(digest[:7], "big") + 1)  # negative: never a corpus passage id
        record = SourceRecord(
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
