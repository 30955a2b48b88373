"""`McpEndpoint`: the MCP server at `/mcp` (streamable HTTP) inside the FastAPI service.

The SDK's session manager handles the protocol; this wrapper adds the service's own gate
(the same API keys and rate limit as every other route, so a missing key is a 401 with
the service's JSON error) and ties the session manager's task group to the app lifespan.
`research` runs go through the service's run manager (`ManagedRuns`), owned by the
caller's key like a `POST /v1/runs`, so its admission limits and per-key quota hold here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agent.config import RunOptions
from agent.events import Event, parse_event
from serving.http.auth import Principal
from serving.http.errors import ServiceError
from serving.http.runs import NewThread
from serving.mcp.server import Backend, McpToolError, build_mcp_server

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from serving.http.runs import RunManager
    from serving.http.services import Services

PATH = "/mcp"
_PRINCIPAL = "thinkrag_principal"  # where the gate leaves the caller in the scope state


class _ManagedRun:
    def __init__(self, runs: RunManager, run_id: str) -> None:
        self.runs = runs
        self.run_id = run_id

    async def events(self) -> AsyncIterator[Event]:
        async for row in self.runs.events(self.run_id):
            if row is not None and row.kind == "agent":  # None: a keepalive tick
                yield parse_event(row.data)

    async def cancel(self) -> None:
        with contextlib.suppress(ServiceError):  # not executing here: nothing to stop
            await self.runs.cancel(self.run_id, wait=True)


class ManagedRuns:
    """`research` as a run of the service: a temporary thread owned by the caller's key."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self.services = services

    async def start(self, question: str, options: RunOptions | None, ctx: Context) -> _ManagedRun:
        request = ctx.request_context.request
        who = getattr(getattr(request, "state", None), _PRINCIPAL, None)
        if not isinstance(who, Principal):
            raise McpToolError("this call did not come through the service's /mcp endpoint")
        svc = self.services()
        try:
            run = svc.runs.submit(
                run_id=str(uuid.uuid4()), thread_id=f"mcp-{uuid.uuid4().hex}",
                assistant_id="research", question=question, options=options,
                metadata={"api": "mcp"}, owner=who.key_id,
                new_thread=NewThread({"api": "mcp"}, temporary=True),
            )  # fmt: skip
        except ServiceError as exc:  # 429s: the queue is full or this key has too many runs
            raise McpToolError(f"research was not started: {exc.message}") from exc
        return _ManagedRun(svc.runs, run.run_id)


class McpEndpoint:
    """An ASGI endpoint: authenticate, then hand the request to the SDK."""

    def __init__(
        self,
        services: Callable[[], Services],
        authenticate: Callable[[Request], Principal],
        *,
        host: str = "127.0.0.1",
    ) -> None:
        backend = Backend(
            retriever=lambda: services().components.retriever,
            runs=lambda: ManagedRuns(services),
        )
        self.server = build_mcp_server(backend)
        # Builds the session manager (with DNS-rebinding protection on loopback hosts);
        # the Starlette app it returns is not used: requests come through `__call__`.
        self._host = host
        self.server.streamable_http_app(streamable_http_path=PATH, host=host)
        self._authenticate = authenticate
        self._ran = False

    def route(self) -> Route:
        return Route(PATH, endpoint=self, methods=["GET", "POST", "DELETE"])

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The session manager's lifetime: open sessions end when the service stops.
        A manager runs once, so an app started again (tests do) gets a fresh one."""
        if self._ran:
            self.server.streamable_http_app(streamable_http_path=PATH, host=self._host)
        self._ran = True
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = self._authenticate(Request(scope, receive))  # raises the service's 401 / 429
        # The SDK hands the tool the Request it builds from this same scope: its `state`.
        scope.setdefault("state", {})[_PRINCIPAL] = who
        await self.server.session_manager.handle_request(scope, receive, send)
