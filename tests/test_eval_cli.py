"""`thinkrag eval` on the real dev file with the local vLLM model (CI's small --limit run).

`--sample 3` draws one question from each dataset (the file's first lines are all HotpotQA)
and the corpus pools only their passages (about 40), so the index builds in seconds even on
two shared cores; `--embedder minilm-int8` keeps it cheap.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.report import Report

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "eval" / "multihop_dev.jsonl"


@pytest.mark.eval
@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(1800)  # vLLM start + 12 answers on 2 shared CPU cores
def test_eval_all_methods_on_three_dev_questions(tmp_path: Path) -> None:
    if not DEV.is_file():
        pytest.skip(f"eval data not found at {DEV}; it lives in ../shared/eval next to the repo")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed; install the extra: pip install 'thinkrag[local]'")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        "from serving.cli import main; main()",
        "eval",
        str(DEV),
        "--method",
        "all",
        "--sample",
        "3",
        "--profile",
        "tiny",  # the machinery on SmolLM2 (a 30 s start); answer quality is tested elsewhere
        "--embedder",
        "minilm-int8",
        "--concurrency",
        "2",
        "--timeout",
        "300",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1700)
    assert done.returncode == 0, done.stderr[-3000:]
    report = Report.model_validate_json((out / "report.json").read_text(encoding="utf-8"))
    overall = {r.method: r for r in report.rows if r.dataset == "all"}
    assert set(overall) == {"closed-book", "rag", "rag-multihop", "agent"}
    assert all(row.n == 3 for row in overall.values())
    datasets = {r.dataset for r in report.rows if r.method == "agent"} - {"all"}
    assert datasets == {"hotpotqa", "2wikimultihopqa", "musique"}
    assert overall["rag"].searches == 1.0 and overall["rag"].supporting_recall is not None
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    assert all(json.loads(line)["prediction"] is not None for line in lines)
    assert {r.system for r in report.retrieval} >= {"bm25", "hybrid", "multihop(hybrid)"}
    assert "| Method |" in (out / "report.md").read_text(encoding="utf-8")
