"""`thinkrag index` and `thinkrag search` through the real CLI on the demo corpus, with the
real default embedder (the README's first command), plus the one-line error contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "corpora" / "demo"
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    index = tmp_path_factory.mktemp("cli") / "demo"
    result = runner.invoke(app, ["index", str(DEMO), "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["published"] and report["documents"] >= 30
    assert report["passages"] == report["passages_embedded"] > report["documents"]
    return index


@pytest.mark.slow
def test_index_demo_then_search_english(demo_index: Path) -> None:
    result = runner.invoke(
        app,
        [
            "search",
            "active parameters in a mixture of experts",
            "--index",
            str(demo_index),
            "-k",
            "5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert 0 < len(hits) <= 5
    assert {"passage_id", "doc_id", "title", "text", "score", "source", "start", "end"} <= set(
        hits[0]
    )
    assert any("expert" in (h["text"] + h["title"]).lower() for h in hits[:3])


@pytest.mark.slow
def test_search_chinese_each_mode(demo_index: Path) -> None:
    for mode in ("bm25", "dense", "hybrid"):
        result = runner.invoke(
            app, ["search", "混合专家模型", "--index", str(demo_index), "--mode", mode, "--json"]
        )
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)
        assert hits, mode
        assert any("专家" in h["text"] for h in hits[:5]), (mode, [h["title"] for h in hits])


@pytest.mark.slow
def test_search_table_and_unchanged_rerun(demo_index: Path) -> None:
    result = runner.invoke(app, ["search", "Jevons paradox", "--index", str(demo_index), "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "rank" in result.stdout and "snippet" in result.stdout
    again = runner.invoke(app, ["index", str(DEMO), "--index", str(demo_index)])
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.stdout and "passages embedded" in again.stdout


def test_errors_are_one_red_line_with_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["search", "x", "--index", str(tmp_path / "none")])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no index at") and "thinkrag index" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app, ["index", str(empty), "--index", str(tmp_path / "i"), "--embedder", "minilm-int8"]
    )
    assert result.exit_code == 2
    assert "error: no documents found under" in result.stderr
    bad_mode = runner.invoke(app, ["search", "x", "--index", str(tmp_path), "--mode", "fuzzy"])
    assert bad_mode.exit_code == 2 and "--mode" in bad_mode.stderr
