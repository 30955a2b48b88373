"""Indexing job and retriever vs bare baselines measured in the same run.

    python benchmarks/indexing.py [--embedder SPEC] [--corpus corpora/demo] [--scale 10]
    python benchmarks/indexing.py --embedder e5 --dev-pool 1000 --only-throughput
    python benchmarks/indexing.py --dev-pool 7000 --only-throughput   # the whole dev pool

Prints markdown tables:
(a) job throughput (whole job: load, chunk, embed, SQLite, FAISS, BM25, publish) vs the
    bare embedder on the same passages (target >= 0.95), with the job's phases;
(b) query latency p50/p95 of `Retriever.search` (dense, hybrid, bm25) vs bare
    embed + FAISS search (target dense overhead <= 1.2);
(c) LangChain's FAISS vector store with the same embedder: build time and query latency;
(d) peak RSS of indexing a synthetic corpus `--scale` times the corpus vs 1x, each in its own
    subprocess (ru_maxrss).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

QUERIES = [
    "How many parameters does a mixture of experts activate per token?",
    "What is the Jevons paradox in AI inference?",
    "Why is CUDA a moat for Nvidia?",
    "How does retrieval-augmented generation cite sources?",
    "What did DeepSeek-R1 show about reinforcement learning?",
    "How does a language model predict the next token?",
    "What is chain-of-thought prompting?",
    "混合专家模型的激活参数是多少？",
    "什么是检索增强生成？",
    "推理成本下降会增加算力需求吗？",
]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def corpus_passages(corpus: Path, max_tokens: int, overlap: int) -> list[str]:
    from retrieval.indexing.chunking import chunk_text
    from retrieval.indexing.loaders import load_paths
    from retrieval.types import Document

    texts = []
    for item in load_paths([corpus]):
        if isinstance(item, Document):
            for span in chunk_text(item.text, max_tokens=max_tokens, overlap_tokens=overlap):
                texts.append(f"{item.title}\n{item.text[span.start : span.end]}")
    return texts


def bench_throughput(
    embedder: Any, corpus: Path, work: Path, load_seconds: float = 0.0
) -> tuple[list[str], Path, float]:
    from retrieval.indexing.job import run_index_job
    from retrieval.indexing.job_types import IndexConfig

    config = IndexConfig()
    texts = corpus_passages(corpus, config.max_tokens, config.overlap_tokens)
    embedder.embed_passages(texts[:8])  # warm up both the same way
    t0 = time.perf_counter()
    for i in range(0, len(texts), config.batch_size):
        embedder.embed_passages(texts[i : i + config.batch_size])
    bare = time.perf_counter() - t0
    index = work / "index"
    report = run_index_job([corpus], index, config, embedder=embedder)
    assert report.passages_embedded == len(texts), (report.passages_embedded, len(texts))
    job_rate = report.passages_embedded / report.seconds
    bare_rate = len(texts) / bare
    print("### (a) indexing throughput, same passages, same embedder\n")
    print("| path | passages | seconds | passages/s | ratio vs bare |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| bare `embed_passages` (batch 64) | {len(texts)} | {bare:.1f} | {bare_rate:.1f} | 1.00 |"
    )
    print(
        f"| `thinkrag index` job (load+chunk+embed+store+faiss+bm25+publish) | {len(texts)} | "
        f"{report.seconds:.1f} | {job_rate:.1f} | {job_rate / bare_rate:.2f} |"
    )
    embed_rate = report.embed_passages_per_second
    print(
        f"| job's embed phase alone (embed + SQLite commits) | {len(texts)} "
        f"| {report.embed_seconds:.1f} | {embed_rate:.1f} | {embed_rate / bare_rate:.2f} |\n"
    )
    print(
        f"Job phases: scan + chunk {report.scan_seconds:.1f} s, embed "
        f"{report.embed_seconds:.1f} s, FAISS + BM25 + publish {report.publish_seconds:.1f} s. "
        f"Model load (once, before the job; in neither row): {load_seconds:.1f} s.\n"
    )
    return texts, index, report.seconds


def write_dev_pool(n: int, out: Path) -> Path:
    """The first `n` pooled passages of the dev eval file as a jsonl corpus (title, text)."""
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from embedders import EVAL_FILE, load_pool  # the same pool as benchmarks/embedders.py

    if not EVAL_FILE.is_file():
        print(
            f"skipped: eval data not found at {EVAL_FILE}; put the shared eval folder beside "
            "the repo, or drop --dev-pool"
        )
        sys.exit(0)
    texts, _ = load_pool(n)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "pool.jsonl").open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            title, _, body = text.partition("\n")
            fh.write(json.dumps({"id": str(i), "title": title, "text": body}) + "\n")
    return out


def bench_latency(embedder: Any, index: Path, repeats: int) -> dict[str, float]:
    from retrieval.disk.generation import open_index
    from retrieval.search.retriever import FaissRetriever

    reader = open_index(index, embedder=embedder)
    retrievers = {
        m: FaissRetriever(reader, mode=m, embedder=embedder) for m in ("dense", "hybrid", "bm25")
    }

    def bare(query: str) -> None:
        vec = np.asarray(embedder.embed_queries([query]), dtype=np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        reader.faiss.search(vec, 5)

    rows: dict[str, list[float]] = {"bare embed + faiss search": []}
    for name in retrievers:
        rows[f"Retriever.search ({name})"] = []
    for _ in range(2):  # warm-up
        for q in QUERIES:
            bare(q)
            for r in retrievers.values():
                r.search(q, k=5)
    for q in QUERIES:
        rows["bare embed + faiss search"] += timed(functools.partial(bare, q), repeats)
        for name, r in retrievers.items():
            rows[f"Retriever.search ({name})"] += timed(
                functools.partial(r.search, q, k=5), repeats
            )
    base = statistics.median(rows["bare embed + faiss search"])
    print(f"### (b) query latency, k=5, {len(QUERIES)} queries x {repeats}\n")
    print("| path | p50 ms | p95 ms | p50 ratio vs bare |")
    print("|---|---:|---:|---:|")
    for name, values in rows.items():
        p50 = percentile(values, 50)
        print(f"| {name} | {p50:.2f} | {percentile(values, 95):.2f} | {p50 / base:.2f} |")
    print()
    return {name: percentile(v, 50) for name, v in rows.items()}


def bench_langchain(
    embedder: Any, texts: list[str], job_seconds: float, index: Path, repeats: int
) -> None:
    """Build and query LangChain's FAISS store; queries alternate with ours, query by query,
    so a busy machine slows both sides alike."""
    try:
        from langchain_community.vectorstores import FAISS
        from langchain_core.embeddings import Embeddings
    except ImportError:
        print("### (c) LangChain FAISS: skipped (langchain-community not installed)\n")
        return

    class Adapter(Embeddings):
        def embed_documents(self, docs: list[str]) -> list[list[float]]:
            out: list[list[float]] = []
            for i in range(0, len(docs), 64):
                out.extend(np.asarray(embedder.embed_passages(docs[i : i + 64])).tolist())
            return out

        def embed_query(self, text: str) -> list[float]:
            return np.asarray(embedder.embed_queries([text]))[0].tolist()

    t0 = time.perf_counter()
    store = FAISS.from_texts(texts, Adapter())
    build = time.perf_counter() - t0
    from retrieval.disk.generation import open_index
    from retrieval.search.retriever import FaissRetriever

    ours = FaissRetriever(open_index(index, embedder=embedder), mode="dense", embedder=embedder)
    for q in QUERIES:
        store.similarity_search(q, k=5)
        ours.search(q, k=5)
    lat: list[float] = []
    ours_lat: list[float] = []
    for q in QUERIES:
        for _ in range(repeats):
            lat += timed(functools.partial(store.similarity_search, q, k=5), 1)
            ours_lat += timed(functools.partial(ours.search, q, k=5), 1)
    lc_p50 = percentile(lat, 50)
    ours_p50 = percentile(ours_lat, 50)
    print("### (c) vs LangChain FAISS vector store (same embedder, same passages)\n")
    print("| system | build s | query p50 ms | build ratio (ours/LC) | query ratio (ours/LC) |")
    print("|---|---:|---:|---:|---:|")
    print(
        "| langchain_community FAISS.from_texts + similarity_search | "
        f"{build:.1f} | {lc_p50:.2f} | 1.00 | 1.00 |"
    )
    print(
        f"| thinkrag job + Retriever.search (dense) | {job_seconds:.1f} | {ours_p50:.2f} | "
        f"{job_seconds / build:.2f} | {ours_p50 / lc_p50:.2f} |\n"
    )


def make_scaled_corpus(corpus: Path, out: Path, scale: int) -> Path:
    """`scale` copies of every file, each copy's text made distinct so none dedupes."""
    for copy in range(scale):
        for path in corpus.rglob("*"):
            if not path.is_file():
                continue
            target = out / f"copy{copy}" / path.relative_to(corpus)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix in (".txt", ".md") and copy:
                target.write_text(
                    path.read_text(encoding="utf-8") + f"\n\nCopy {copy}.\n", encoding="utf-8"
                )
            else:
                shutil.copy(path, target)
    return out


def rss_child(corpus: str, index: str, embedder_spec: str) -> None:
    from retrieval.embedders import load_embedder
    from retrieval.indexing.job import run_index_job
    from retrieval.indexing.job_types import IndexConfig

    if embedder_spec == "hash":  # model-free: isolates the job's own memory from the model's
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from testing.embedder import HashEmbedder

        embedder: Any = HashEmbedder(dim=384)
    else:
        embedder = load_embedder(embedder_spec)
    embedder.embed_passages(["warm up"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = run_index_job(
        [corpus], index, IndexConfig(embedder_spec=embedder_spec), embedder=embedder
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{report.passages} {before} {peak}")


def bench_rss(corpus: Path, work: Path, scale: int, embedder_spec: str) -> None:
    rows = []
    for factor in (1, scale):
        src = corpus if factor == 1 else make_scaled_corpus(corpus, work / f"x{factor}", factor)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--rss-child",
                str(src),
                str(work / f"rss{factor}"),
                "--embedder",
                embedder_spec,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        passages, before, peak = (int(x) for x in out.stdout.split()[-3:])
        rows.append((factor, passages, before // 1024, peak // 1024))
    print(f"### (d) peak RSS while indexing (subprocess each, embedder {embedder_spec})\n")
    print(
        "| corpus | passages | RSS after model load MiB | peak RSS MiB | job growth MiB "
        "| peak ratio vs 1x |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for factor, passages, before, peak in rows:
        print(
            f"| {factor}x demo | {passages} | {before:.0f} | {peak:.0f} | {peak - before:.0f} | "
            f"{peak / rows[0][3]:.2f} |"
        )
    print()


def main() -> None:
    from retrieval.embedders import DEFAULT_EMBEDDER, load_embedder

    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument(
        "--corpus", default=str(Path(__file__).resolve().parents[1] / "corpora" / "demo")
    )
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--rss-embedder",
        default=None,
        help="embedder for (d); default --embedder; 'hash' = the tests' model-free HashEmbedder",
    )
    parser.add_argument("--only-rss", action="store_true", help="run (d) alone")
    parser.add_argument("--only-throughput", action="store_true", help="run (a) alone")
    parser.add_argument(
        "--dev-pool", type=int, default=0, help="index N pooled dev passages instead of --corpus"
    )
    parser.add_argument("--rss-child", nargs=2, metavar=("CORPUS", "INDEX"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.rss_child:
        rss_child(args.rss_child[0], args.rss_child[1], args.embedder)
        return
    corpus = Path(args.corpus)
    rss_embedder = args.rss_embedder or args.embedder
    if args.only_rss:
        with tempfile.TemporaryDirectory() as tmp:
            bench_rss(corpus, Path(tmp), args.scale, rss_embedder)
        return
    t_load = time.perf_counter()
    embedder = load_embedder(args.embedder)
    load_seconds = time.perf_counter() - t_load
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.dev_pool:
            corpus = write_dev_pool(args.dev_pool, work / "dev-pool")
        print(f"embedder `{args.embedder}` ({embedder.id}, dim {embedder.dim}); corpus {corpus}\n")
        texts, index, job_seconds = bench_throughput(embedder, corpus, work, load_seconds)
        if args.only_throughput:
            return
        bench_latency(embedder, index, args.repeats)
        bench_langchain(embedder, texts, job_seconds, index, args.repeats)
        bench_rss(corpus, work, args.scale, rss_embedder)


if __name__ == "__main__":
    main()
