"""`McpHub`: the configured MCP servers, connected once per process on a thread of their own.

Each server lives in one long-lived task on the hub's event loop (the SDK's transports
are anyio context managers that must be entered and left by the same task), so the hub
works the same from `asyncio.run` in the CLI, uvicorn's loop and test loops, and `close()`
shuts every session and child process down from one place. A server that cannot start
is a warning, not an error: the agent runs without its tools.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

from agent.mcp.config import McpServerConfig

log = logging.getLogger(__name__)


class McpCallError(RuntimeError):
    """A call that did not produce a result; the message is for the model to read."""


@dataclass(frozen=True, slots=True)
class RemoteTool:
    """A tool as the server lists it."""

    server: McpServerConfig
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class _Link:
    config: McpServerConfig
    session: Any = None  # mcp.ClientSession once initialised
    tools: list[RemoteTool] = field(default_factory=list)
    problem: str | None = None  # why it is not (or no longer) usable


def describe(exc: BaseException) -> str:
    """The innermost meaningful error of an (anyio) exception group, in one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpHub:
    def __init__(self, servers: Sequence[McpServerConfig], *, errlog: TextIO | None = None):
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"MCP server names must be unique, got {names}")
        self._links = {s.name: _Link(s) for s in servers}
        self._errlog: TextIO = _with_fileno(errlog or sys.stderr)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: list[Future[None]] = []
        self.warnings: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Connect every server (concurrently, each within its start timeout); returns the
        start-up warnings. Calling it again does nothing."""
        if self._loop is not None:
            return self.warnings
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mcp-hub", daemon=True)
        self._thread.start()
        self._stop = asyncio.run_coroutine_threadsafe(_make_event(), loop).result()
        atexit.register(self.close)
        readies: list[Future[None]] = []
        for link in self._links.values():
            ready: Future[None] = Future()
            readies.append(ready)
            self._tasks.append(asyncio.run_coroutine_threadsafe(self._serve(link, ready), loop))
        for link, ready in zip(self._links.values(), readies, strict=True):
            try:
                ready.result(timeout=link.config.start_timeout_seconds + 5)
            except TimeoutError:
                link.problem = link.problem or "did not answer in time"
        for link in self._links.values():
            if link.problem is not None:
                self.warnings.append(f"MCP server {link.config.name!r} {link.problem}")
            else:
                self.warnings.extend(self._unknown_allowed(link))
        return self.warnings

    def close(self) -> None:
        """End every session (stdio servers are terminated by the SDK) and the thread."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        atexit.unregister(self.close)
        if self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        for task in self._tasks:
            with contextlib.suppress(Exception):  # a server's failure was reported at start
                task.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> McpHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what is available ----------------------------------------------------------------
    @property
    def tools(self) -> list[RemoteTool]:
        return [t for link in self._links.values() if link.problem is None for t in link.tools]

    async def call(self, remote: RemoteTool, arguments: dict[str, Any]) -> Any:
        """Call a tool from any event loop; returns the SDK's `CallToolResult`."""
        loop = self._loop
        link = self._links[remote.server.name]
        if loop is None or link.session is None or link.problem is not None:
            raise McpCallError(
                f"MCP server {remote.server.name!r} is not available"
                + (f" ({link.problem})" if link.problem else "")
            )
        future = asyncio.run_coroutine_threadsafe(self._call(link, remote.name, arguments), loop)
        return await asyncio.wrap_future(future)  # cancelling the caller cancels the call

    # -- on the hub's loop ----------------------------------------------------------------
    async def _serve(self, link: _Link, ready: Future[None]) -> None:
        cfg = link.config
        try:
            async with AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout(cfg.start_timeout_seconds):
                        session = await self._connect(stack, cfg)
                        await session.initialize()
                        listed = await session.list_tools()
                except TimeoutError:
                    link.problem = f"did not start within {cfg.start_timeout_seconds:g} s"
                    return
                link.tools = self._offered(cfg, listed.tools)
                link.session = session
                ready.set_result(None)
                assert self._stop is not None
                await self._stop.wait()
        except BaseException as exc:  # any failure of a server is reported
            if isinstance(exc, asyncio.CancelledError) and self._loop is None:
                return
            link.problem = (
                f"stopped: {describe(exc)}" if link.session else f"did not start: {describe(exc)}"
            )
            log.warning("MCP server %r %s", cfg.name, link.problem)
        finally:
            link.session = None if link.problem else link.session
            if not ready.done():
                ready.set_result(None)

    async def _connect(self, stack: AsyncExitStack, cfg: McpServerConfig) -> Any:
        from mcp import ClientSession

        if cfg.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=cfg.command[0], args=cfg.command[1:], env=cfg.env or None, cwd=cfg.cwd
            )
            read, write = await stack.enter_async_context(stdio_client(params, self._errlog))
        else:
            import httpx2  # the SDK's HTTP client library
            from mcp.client.streamable_http import streamable_http_client

            assert cfg.url is not None
            # The SDK's recommended limits: the read timeout is long because a server may
            # hold a stream open; each call has its own `timeout_seconds` on top.
            timeout = httpx2.Timeout(30.0, read=300.0)
            client = await stack.enter_async_context(
                httpx2.AsyncClient(headers=cfg.headers, timeout=timeout)
            )
            read, write = await stack.enter_async_context(
                streamable_http_client(cfg.url, http_client=client)
            )
        return await stack.enter_async_context(ClientSession(read, write))

    @staticmethod
    def _offered(cfg: McpServerConfig, listed: Sequence[Any]) -> list[RemoteTool]:
        out = []
        for tool in listed:
            if not cfg.allows(tool.name):
                continue
            if cfg.tool_name(tool.name) is None:
                log.warning("MCP tool %r of %r: name not usable, skipped", tool.name, cfg.name)
                continue
            schema = dict(tool.input_schema or {}) or {"type": "object", "properties": {}}
            out.append(RemoteTool(cfg, tool.name, tool.description or "", schema))
        return out

    @staticmethod
    def _unknown_allowed(link: _Link) -> list[str]:
        allowed = link.config.tools or []
        have = {t.name for t in link.tools}
        return [
            f"MCP server {link.config.name!r} has no tool {name!r} (listed in `tools`)"
            for name in allowed
            if name not in have
        ]

    async def _call(self, link: _Link, name: str, arguments: dict[str, Any]) -> Any:
        timeout = link.config.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return await link.session.call_tool(name, arguments, read_timeout_seconds=timeout)
        except TimeoutError:
            raise McpCallError(
                f"{link.config.name}.{name} did not answer within {timeout:g} s"
            ) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from mcp.shared.exceptions import MCPError
            from mcp_types.jsonrpc import CONNECTION_CLOSED

            if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
                link.problem = "stopped: its connection closed"  # later calls fail fast
                log.warning("MCP server %r %s", link.config.name, link.problem)
            raise McpCallError(f"{link.config.name}.{name} failed: {describe(exc)}") from exc


def _with_fileno(stream: TextIO) -> TextIO:
    """Child processes write their stderr to a real file: a captured stream (pytest,
    typer's test runner) has none, so the process's own stderr stands in."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__ or stream
    return stream


async def _make_event() -> asyncio.Event:
    return asyncio.Event()
