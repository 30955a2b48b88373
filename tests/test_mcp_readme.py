"""The README's MCP examples, run as written (paths and addresses rewritten to the test's):
the Claude-Desktop-style stdio entry starts `thinkrag mcp`; the client settings file is
checked with `thinkrag mcp --list-tools` and used by `thinkrag ask`, whose scripted
model calls both configured servers and cites both. (The HTTP example is a
`<!-- test: service -->` block, run by `test_readme_examples.py`.)"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from typer.testing import CliRunner

from serving.cli import app
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call
from tests.test_service_support import ThreadServer, research_turn, service_settings

README = Path(__file__).resolve().parents[1] / "README.md"
Factory = Callable[..., ScriptedModelServer]
BIN = Path(sys.executable).parent


def block(tag: str) -> str:
    pattern = re.escape(f"<!-- test: {tag} -->") + r"\s*\n```\w+\n(.*?)^```"
    match = re.search(pattern, README.read_text("utf-8"), re.M | re.S)
    assert match is not None, f"README.md has no block tagged {tag!r}"
    return match.group(1)


def executable(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' puts it next to python)")
    return found


def test_readme_http_example_is_run_by_the_service_examples_test() -> None:
    """The third example, the SDK client on `/mcp`, is a `<!-- test: service -->` block
    that `test_readme_examples.py` runs against a live service (and checks its answer)."""
    from tests.test_readme_examples import BLOCKS

    (code,) = [c for lang, c in BLOCKS if lang == "python" and "/mcp" in c]
    assert "streamable_http_client" in code and '"research"' in code


async def test_readme_stdio_entry_starts_thinkrag(contract_index: Path, tmp_path: Path) -> None:
    entry = json.loads(block("mcp-stdio"))["mcpServers"]["thinkrag"]
    args = [str(contract_index) if a == "/path/to/index" else a for a in entry["args"]]
    params = StdioServerParameters(
        command=executable(entry["command"]),
        args=args,
        env={"THINKRAG_RETRIEVER_MODE": "bm25"},  # the test index's embedder is test-only
        cwd=str(tmp_path),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        found = await session.call_tool("search", {"query": "Jevons paradox", "k": 2})
    assert not found.is_error and found.structured_content["hits"][0]["doc_id"] == "jevons"


def test_readme_client_config_lists_and_serves_the_agent(
    scripted_model: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handbook = ThreadServer(service_settings(tmp_path, scripted_model(research_turn).base_url))
    with handbook:
        text = block("mcp-client")
        text = text.replace('"mcp-server-time"', json.dumps(executable("mcp-server-time")))
        text = text.replace("http://127.0.0.1:8080", handbook.url)
        config = tmp_path / "thinkrag.toml"
        config.write_text(text)

        listed = CliRunner().invoke(app, ["mcp", "--list-tools", str(config)])
        assert listed.exit_code == 0, listed.output
        assert [line.split(":")[0] for line in listed.stdout.splitlines()] == [
            "time__get_current_time",
            "handbook__search",
        ]

        model = scripted_model(
            [
                ScriptedTurn(
                    tool_calls=(
                        call("time__get_current_time", timezone="UTC"),
                        call("handbook__search", query="capital of Freedonia", k=1),
                    )
                ),
                ScriptedTurn(
                    content="It is daytime in UTC [1] and the capital is Sylvania City [2]."
                ),
            ]
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("THINKRAG_MEMORY_PASSAGES", str(tmp_path / "passages.jsonl"))
        monkeypatch.setenv("THINKRAG_CONFIG", str(config))
        asked = CliRunner().invoke(
            app,
            [
                "ask",
                "What time is it in UTC?",
                "--model",
                model.base_url,
                "--json",
            ],
        )
    assert asked.exit_code == 0, asked.output
    result = json.loads(asked.stdout)
    assert result["answer"].endswith("Sylvania City [2].") and not result["removed_citations"]
    assert [s["source"] for s in result["sources"]] == [
        "mcp://time/get_current_time",
        "mcp://handbook/search",
    ]
    assert "Sylvania City" in result["sources"][1]["text"]
    offered = {t["function"]["name"] for t in model.requests[0].body["tools"]}
    assert {"search", "time__get_current_time", "handbook__search"} <= offered
