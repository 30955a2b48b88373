"""`/mcp` in the service: the SDK's streamable-HTTP client against the real app under
uvicorn, behind the service's API keys, its `research` runs held to the run manager's
limits like any other run; and the agent's MCP client using it by URL."""

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
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
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


def _slow_or_research(req: ScriptRequest) -> ScriptedTurn:
    users = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
    if users and "slowly" in str(users[-1].get("content")):
        return ScriptedTurn(content="word " * 400, latency=0.05)  # ~20 s of streaming
    return research_turn(req)


async def test_research_runs_go_through_the_run_manager(
    scripted_model: Factory, tmp_path: Path
) -> None:
    """A `research` call is a run of the service: owned by the caller's key, visible on
    /v1/runs, counted against the key's run quota (shared with POST /v1/runs), and
    cancelled through the run manager when the client cancels."""
    model = scripted_model(_slow_or_research)
    settings = service_settings(tmp_path, model.base_url, api_keys=[KEY], max_runs_per_key=1)
    auth = {"Authorization": f"Bearer {KEY}"}
    with ThreadServer(settings) as service:
        async with mcp_session(service.url, KEY) as s, httpx.AsyncClient(headers=auth) as rest:
            done = await s.call_tool("research", {"question": "What is the capital of Freedonia?"})
            assert not done.is_error, done.content
            run = await rest.get(f"{service.url}/v1/runs/{done.structured_content['run_id']}")
            assert run.status_code == 200 and run.json()["status"] == "success"

            slow = asyncio.create_task(s.call_tool("research", {"question": "Think slowly."}))
            while not any("slowly" in str(r.body) for r in model.requests):
                await asyncio.sleep(0.05)
            refused = await s.call_tool("research", {"question": "Another one?"})
            assert refused.is_error
            assert "research was not started: this API key already has 1 unfinished runs" in (
                refused.content[0].text
            )
            quota = await rest.post(f"{service.url}/v1/runs", json={"question": "And REST?"})
            assert quota.status_code == 429  # one quota for both doors

            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert await asyncio.to_thread(model.wait_for_disconnect, 10.0)
            again = await s.call_tool("research", {"question": "What is the capital of Freedonia?"})
            assert not again.is_error, again.content  # the cancelled run freed the slot


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
