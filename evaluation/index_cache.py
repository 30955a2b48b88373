"""The open-corpus index of an eval file: pooled passages, built once per fingerprint.

The fingerprint covers the pooled passage ids and the embedder spec, so a rerun (or a
second method in another run) reuses the index, and a different limit or embedder builds
its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from evaluation.dataset import EvalQuestion, pool_passages, pooled_documents
from retrieval.indexing.job_types import IndexConfig, IndexReport, JobProgress
from retrieval.types import Embedder


def corpus_fingerprint(questions: Sequence[EvalQuestion], embedder_spec: str) -> str:
    digest = hashlib.sha256(f"embedder={embedder_spec}\n".encode())
    for passage_id in sorted(p.id for p in pool_passages(questions)):
        digest.update(passage_id.encode() + b"\n")
    return digest.hexdigest()[:20]


def ensure_eval_index(
    questions: Sequence[EvalQuestion],
    embedder_spec: str,
    *,
    index_dir: Path | None = None,
    cache_root: Path | None = None,
    progress: JobProgress | None = None,
    embedder: Embedder | None = None,
    model_cache: Path | None = None,
) -> tuple[Path, IndexReport | None]:
    """Index the pooled passages (or reuse a finished index); returns the dir and the report.

    The job is incremental and resumable, so an index killed half-way is finished on the
    next call rather than rebuilt. Without `index_dir` the index lives under `cache_root`
    (the CLI passes `Settings.eval_index_cache`, the same cache rule as local models).
    """
    from retrieval.disk.layout import read_current
    from retrieval.indexing.job import index_documents

    if index_dir is None:
        if cache_root is None:
            raise ValueError("ensure_eval_index needs index_dir or cache_root")
        index_dir = cache_root / corpus_fingerprint(questions, embedder_spec)
    done_marker = index_dir / ".eval-complete"
    if done_marker.is_file() and read_current(index_dir) is not None:
        return index_dir, None
    report = index_documents(
        pooled_documents(questions),
        index_dir,
        IndexConfig(embedder_spec=embedder_spec, model_cache=model_cache),
        progress=progress,
        embedder=embedder,
    )
    done_marker.write_text(report.to_json(), encoding="utf-8")
    return index_dir, report
