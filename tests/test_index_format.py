"""On-disk compatibility and the pipeline's single chunk pass.

An index written before the `spans` table and the manifest's `faiss_sha256` existed must
still open, and a job interrupted under that older format must still resume to the same
index as a clean build.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

import retrieval.indexing.scan as scan_module
from retrieval.disk.generation import open_index
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from retrieval.types import Vectors
from testing.embedder import HashEmbedder
from tests.fixtures.indexes import passage_set, write_text_corpus

CONFIG = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8)


class FailingEmbedder(HashEmbedder):
    """Raises on its `fail_on`-th call, like a model server dropping mid-job."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if self.passage_calls + 1 == self.fail_on:
            raise RuntimeError("embedder went away")
        return super().embed_passages(texts)


def _old_format(index: Path) -> None:
    """Make `index` look like one written before spans and FAISS checksums."""
    conn = sqlite3.connect(index / "store.sqlite")
    conn.execute("DROP TABLE spans")
    conn.commit()
    conn.close()
    current = (index / "CURRENT").read_text().strip() if (index / "CURRENT").exists() else None
    if current:
        manifest = index / current / "manifest.json"
        data = json.loads(manifest.read_text())
        del data["faiss_sha256"]
        manifest.write_text(json.dumps(data))


def test_old_format_index_opens_and_updates(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 4)
    index = tmp_path / "index"
    run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    _old_format(index)
    reader = open_index(index)
    assert reader.manifest.faiss_sha256 is None and reader.manifest.passages > 4
    (corpus / "doc0001.txt").write_text("Okapi facts.\n\nThe okapi lives in forests.\n")
    report = run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    assert (report.updated, report.unchanged, report.published) == (1, 3, True)
    assert open_index(index).manifest.faiss_sha256 is not None


def test_job_interrupted_under_old_format_resumes_to_a_clean_build(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 8)
    index = tmp_path / "index"
    with pytest.raises(RuntimeError, match="went away"):
        run_index_job([corpus], index, CONFIG, embedder=FailingEmbedder(fail_on=3))
    _old_format(index)  # pending versions now have no recorded spans
    report = run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    assert report.published and report.added == 8
    clean = tmp_path / "clean"
    run_index_job([corpus], clean, CONFIG, embedder=HashEmbedder())
    assert passage_set(index) == passage_set(clean)


def test_each_document_is_chunked_once_per_job(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 5)
    calls: list[int] = []
    real = scan_module.chunk_text

    def counting(text: str, **kw: int) -> object:
        calls.append(len(text))
        return real(text, **kw)

    scan_module.chunk_text = counting  # type: ignore[assignment]
    try:
        report = run_index_job([corpus], tmp_path / "index", CONFIG, embedder=HashEmbedder())
    finally:
        scan_module.chunk_text = real
    assert report.added == 5 and len(calls) == 5
    # and no other stage of the pipeline (embed backends included) chunks on its own
    indexing = Path(scan_module.__file__).parent
    users = sorted(
        p.name
        for p in indexing.rglob("*.py")
        if "chunk_text" in p.read_text() and p.name not in ("chunking.py", "scan.py")
    )
    assert users == []
