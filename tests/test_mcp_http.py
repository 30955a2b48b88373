"""`/mcp` in the service: the SDK's streamable-HTTP client against the real app under
uvicorn, behind the service's API keys; and the agent's MCP client using it by URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from agent.mcp.config import McpServerConfig
from agent.mcp.hub import McpHub, describe
from agent.mcp.tool import make_tools
from testing.scripted import ScriptedModelServer
from tests.test_service_support import ThreadServer, research_turn, service_settings

Factory = Callable[..., ScriptedModelServer]
KEY = "mcp-test-key"


@asynccontextmanager
async def mcp_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@pytest.fixture
def service(scripted_model: Factory, tmp_path: Path) -> ThreadServer:
    model = scripted_model(research_turn)
    return ThreadServer(service_settings(tmp_path, model.base_url, api_keys=[KEY]))


async def test_mcp_needs_the_api_key(service: ThreadServer) -> None:
    with service:
        async with httpx.AsyncClient() as client:
            hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            r = await client.post(f"{service.url}/mcp", json=hello)
            assert r.status_code == 401
            assert r.json()["error"]["type"] == "unauthorized"
            wrong = await client.post(
                f"{service.url}/mcp", json=hello, headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
        with pytest.raises(BaseException) as failed:  # the SDK client cannot connect
            async with mcp_session(service.url, None):
                pass
        assert describe(failed.value) == "MCPError: Server returned an error response"


async def test_mcp_search_and_research_over_http(service: ThreadServer) -> None:
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    with service:
        async with mcp_session(service.url, KEY) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert names == {"search", "open_passage", "research"}
            found = await s.call_tool("search", {"query": "capital of Freedonia", "k": 2})
            assert not found.is_error, found.content
            hits = found.structured_content["hits"]
            assert hits and "Freedonia" in hits[0]["text"]
            typo = await s.call_tool("research", {"question": "q", "budgets": {"max_stepz": 2}})
            assert typo.is_error and "max_stepz" in typo.content[0].text
            done = await s.call_tool(
                "research",
                {"question": "What is the capital of Freedonia?"},
                progress_callback=on_progress,
            )
    assert not done.is_error, done.content
    assert done.structured_content["answer"] == "The capital of Freedonia is Sylvania City [1]."
    assert done.structured_content["sources"][0]["number"] == 1
    assert progress == [f"search 'capital of Freedonia': {len(hits)} hits"]


async def test_agent_uses_a_streamable_http_server_by_url(service: ThreadServer) -> None:
    with service:
        config = McpServerConfig(
            name="corpus",
            url=f"{service.url}/mcp",
            headers={"Authorization": f"Bearer {KEY}"},
            tools=["search"],
        )
        no_key = McpServerConfig(name="nokey", url=f"{service.url}/mcp", start_timeout_seconds=10)
        hub = McpHub([config, no_key])
        warnings = await asyncio.to_thread(hub.start)
        try:
            (tool,) = make_tools(hub)
            assert tool.name == "corpus__search"
            assert any("'nokey' did not start" in w for w in warnings), warnings
            remote = hub.tools[0]
            result = await hub.call(remote, {"query": "capital of Freedonia", "k": 1})
            assert not result.is_error and len(result.structured_content["hits"]) == 1
        finally:
            await asyncio.to_thread(hub.close)
