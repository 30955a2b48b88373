"""`McpEndpoint`: the MCP server at `/mcp` (streamable HTTP) inside the FastAPI service.

The SDK's session manager handles the protocol; this wrapper adds the service's own gate
(the same API keys and rate limit as every other route, so a missing key is a 401 with
the service's JSON error) and ties the session manager's task group to the app lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from serving.mcp.server import Backend, build_mcp_server
from serving.runtime import Components

PATH = "/mcp"


class McpEndpoint:
    """An ASGI endpoint: authenticate, then hand the request to the SDK."""

    def __init__(
        self,
        components: Callable[[], Components],
        authenticate: Callable[[Request], Any],
        *,
        host: str = "127.0.0.1",
    ) -> None:
        backend = Backend(
            retriever=lambda: components().retriever, engine=lambda: components().engine
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
        self._authenticate(Request(scope, receive))  # raises the service's 401 / 429
        await self.server.session_manager.handle_request(scope, receive, send)
