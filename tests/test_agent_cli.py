"""`thinkrag ask` end to end: real FAISS index, scripted model over HTTP, SQLite threads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app
from serving.models.agent_config import agent_config_for
from serving.models.profiles import get_profile
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call

Factory = Callable[..., ScriptedModelServer]


def _script() -> list[ScriptedTurn]:
    return [
        ScriptedTurn(
            reasoning="Look up the paradox.",
            tool_calls=(call("search", query="Jevons paradox coal"),),
        ),
        ScriptedTurn(content="Cheaper inference can raise total demand [1] [12]."),
    ]


def _invoke(args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    # bm25 mode: the contract index was embedded with a test-only embedder.
    monkeypatch.setenv("THINKRAG_RETRIEVER_MODE", "bm25")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_ask_json_prints_the_result_object(
    scripted_model: Factory, contract_index: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = scripted_model(_script())
    out = _invoke(
        [
            "ask",
            "What is the Jevons paradox?",
            "--index",
            str(contract_index),
            "--model",
            server.base_url,
            "--json",
            "--max-steps",
            "3",
        ],
        monkeypatch,
        tmp_path,
    )
    result = json.loads(out)
    assert result["type"] == "run_finished"
    assert result["answer"] == "Cheaper inference can raise total demand [1]."
    assert result["removed_citations"] == [12]
    assert result["sources"][0]["doc_id"] == "jevons"
    assert (tmp_path / ".thinkrag").is_dir()  # the default checkpoint store


def test_ask_streams_reasoning_tools_and_sources(
    scripted_model: Factory, contract_index: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = scripted_model(_script())
    out = _invoke(
        [
            "ask",
            "What is the Jevons paradox?",
            "--index",
            str(contract_index),
            "--model",
            server.base_url,
            "--thread",
            "cli-thread",
        ],
        monkeypatch,
        tmp_path,
    )
    assert "Look up the paradox." in out
    assert '→ search {"query": "Jevons paradox coal"}' in out
    assert "[1] Jevons paradox — econ/jevons.txt" in out
    assert "Cheaper inference can raise total demand [1]." in out
    assert "Sources" in out and "removed unknown citations: 12" in out


def test_profiles_map_to_agent_settings() -> None:
    local = agent_config_for(get_profile("local"))
    assert local.protocol == "tools" and local.tool_choice == "required" and local.retrieval_first
    assert local.context_length == get_profile("local").max_model_len
    tiny = agent_config_for(get_profile("tiny"))
    assert tiny.protocol == "json" and tiny.retrieval_first
    moe = agent_config_for(get_profile("tiny-moe"), max_steps=2)
    assert moe.protocol == "tools" and moe.thinking_tokens_per_step == 64 and moe.max_steps == 2
