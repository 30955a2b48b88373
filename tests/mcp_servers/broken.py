"""A deliberately misbehaving MCP server for the client tests, on the SDK's `MCPServer`.

`python -m tests.mcp_servers.broken MODE`: `exit` dies before the handshake, `silent`
never answers it, `ok` serves tools that hang, fail, return too much, return non-text
content, or kill the process in the middle of a call.
"""

from __future__ import annotations

import os
import sys
import time

import anyio
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build() -> MCPServer:
    server: MCPServer = MCPServer("broken", log_level="WARNING")

    @server.tool(description="Never answers.")
    async def hang() -> str:
        await anyio.sleep(3600)
        return "too late"

    @server.tool(description="Always fails.")
    async def fail(reason: str = "disk on fire") -> str:
        raise ToolError(f"cannot do that: {reason}")

    @server.tool(description="Returns `n` characters.")
    async def long(n: int = 5000) -> str:
        return "x" * n

    @server.tool(description="Returns an image and no text.")
    async def picture() -> Image:
        return Image(data=b"\x89PNG\r\n\x1a\n\x00\x00garbage", format="png")

    @server.tool(description="Kills the server process mid-call.")
    async def crash() -> str:
        os._exit(1)

    return server


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    if mode == "exit":
        print("broken: refusing to start", file=sys.stderr)
        sys.exit(3)
    if mode == "silent":
        time.sleep(3600)
    anyio.run(build().run_stdio_async)


if __name__ == "__main__":
    main()
