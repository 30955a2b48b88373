"""thinkrag as an MCP server: `thinkrag mcp` over stdio, driven by the SDK's stdio client.

A real process (the CLI), a real index built by the indexing job, the scripted model
speaking the OpenAI wire protocol for `research`, and the SDK's own `ClientSession`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call

Factory = Callable[..., ScriptedModelServer]
CLI = "from serving.cli import main; main()"


def stdio_params(index: Path, model_url: str, cwd: Path) -> StdioServerParameters:
    """How a desktop client starts thinkrag (README: "thinkrag as an MCP server")."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", CLI, "mcp", "--index", str(index), "--model", model_url],
        # bm25: the test index was embedded with a test-only embedder.
        env={"THINKRAG_RETRIEVER_MODE": "bm25"},
        cwd=str(cwd),
    )


@asynccontextmanager
async def session_for(params: StdioServerParameters) -> AsyncIterator[ClientSession]:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def _search_script() -> list[ScriptedTurn]:
    return [
        ScriptedTurn(
            reasoning="Look it up.", tool_calls=(call("search", query="Jevons paradox coal"),)
        ),
        ScriptedTurn(content="Efficiency can raise total coal use [1]."),
    ]


async def test_stdio_tools_search_open_passage_and_document(
    contract_index: Path, tmp_path: Path
) -> None:
    async with session_for(stdio_params(contract_index, "http://127.0.0.1:9/v1", tmp_path)) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == {"search", "open_passage", "research"}
        search = tools["search"].input_schema
        assert search["required"] == ["query"]
        assert set(search["properties"]) == {"query", "k", "mode"}
        assert "budgets" in tools["research"].input_schema["properties"]
        assert tools["search"].output_schema is not None  # typed results for the client
        templates = (await s.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["thinkrag://doc/{doc_id}"]

        found = await s.call_tool("search", {"query": "Jevons paradox coal", "k": 3})
        assert not found.is_error, found.content
        hits = found.structured_content["hits"]
        assert 1 <= len(hits) <= 3 and hits[0]["doc_id"] == "jevons"
        assert {"passage_id", "title", "source", "score", "text", "start", "end"} <= set(hits[0])

        opened = await s.call_tool("open_passage", {"id": hits[0]["passage_id"], "neighbours": 1})
        passages = opened.structured_content["passages"]
        assert hits[0]["passage_id"] in [p["passage_id"] for p in passages]
        assert all(p["doc_id"] == "jevons" for p in passages)

        missing = await s.call_tool("open_passage", {"id": 123456789})
        assert missing.is_error and "no passage with id 123456789" in missing.content[0].text

        bad_mode = await s.call_tool("search", {"query": "coal", "mode": "dense"})
        assert bad_mode.is_error and "mode 'dense'" in bad_mode.content[0].text

        doc = await s.read_resource("thinkrag://doc/jevons")
        assert "Jevons" in doc.contents[0].text


async def test_stdio_research_reports_progress_and_checked_sources(
    scripted_model: Factory, contract_index: Path, tmp_path: Path
) -> None:
    model = scripted_model(_search_script())
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with session_for(stdio_params(contract_index, model.base_url, tmp_path)) as s:
        result = await s.call_tool(
            "research",
            {"question": "What is the Jevons paradox?", "budgets": {"max_steps": 3}},
            progress_callback=on_progress,
        )
    assert not result.is_error, result.content
    out: dict[str, Any] = result.structured_content
    assert out["answer"] == "Efficiency can raise total coal use [1]."
    assert [s["number"] for s in out["sources"]] == [1]
    assert out["sources"][0]["doc_id"] == "jevons"
    assert out["tool_calls"] == 1
    assert len(progress) == 1
    assert progress[0][1] is not None and progress[0][1].startswith(
        "search 'Jevons paradox coal': "
    )
    assert progress[0][1].endswith(" hits")


async def test_stdio_research_cancel_stops_the_run(
    scripted_model: Factory, contract_index: Path, tmp_path: Path
) -> None:
    slow = ScriptedTurn(content="word " * 400, latency=0.05)  # ~20 s of streaming
    model = scripted_model([_search_script()[0], slow])
    searched = asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        searched.set()

    async with session_for(stdio_params(contract_index, model.base_url, tmp_path)) as s:
        task = asyncio.create_task(
            s.call_tool("research", {"question": "Jevons?"}, progress_callback=on_progress)
        )
        await asyncio.wait_for(searched.wait(), 30)
        await asyncio.sleep(0.5)  # the answer is streaming now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the server cancelled the run: its model request was dropped mid-stream
        assert await asyncio.to_thread(model.wait_for_disconnect, 10.0)
        alive = await s.call_tool("search", {"query": "coal"})  # and it still serves
        assert not alive.is_error


def test_stdio_missing_index_is_one_line(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", CLI, "mcp", "--index", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # stdout belongs to the protocol
