"""The indexing job: incremental, resumable after SIGKILL, atomic for readers, bounded batches.

Jobs here use `HashEmbedder` (deterministic, model-free) and real loaders, chunker, SQLite,
FAISS and bm25s; the real default embedder is exercised in tests/test_cli_index.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.disk.generation import open_index
from retrieval.errors import ManifestMismatchError
from retrieval.indexing.job import index_documents, run_index_job
from retrieval.indexing.job_types import IndexConfig
from retrieval.search.retriever import load_retriever
from testing.contract import make_document
from testing.embedder import HashEmbedder
from tests.fixtures.indexes import passage_set, write_text_corpus

REPO = Path(__file__).resolve().parents[1]
CONFIG = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8)


def test_incremental_reindex_embeds_only_changes(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 6)
    index = tmp_path / "index"
    first = HashEmbedder()
    report = run_index_job([corpus], index, CONFIG, embedder=first)
    assert (report.added, report.unchanged, report.published) == (6, 0, True)
    assert report.passages == report.passages_embedded == first.passages_embedded > 6
    assert report.generation == 1

    again = HashEmbedder()
    report = run_index_job([corpus], index, CONFIG, embedder=again)
    assert again.passages_embedded == 0
    assert (report.unchanged, report.added, report.published) == (6, 0, False)
    assert report.generation == 1

    (corpus / "doc0001.txt").write_text("Zebra quagga okapi.\n\nThe okapi lives in forests.\n")
    (corpus / "doc0002.txt").unlink()
    (corpus / "new.txt").write_text("Narwhal tusk facts.\n\nThe narwhal is a whale.\n")
    third = HashEmbedder()
    report = run_index_job([corpus], index, CONFIG, embedder=third)
    assert (report.updated, report.added, report.removed, report.unchanged) == (1, 1, 1, 4)
    assert report.generation == 2 and report.published
    # only the changed and new documents were embedded
    assert third.passages_embedded == report.passages_embedded
    assert all(("okapi" in t) or ("narwhal" in t.lower()) for t in third.embedded_texts)

    retriever = load_retriever(index, mode="bm25")
    assert retriever.search("okapi", k=1)[0].source.endswith("doc0001.txt")
    assert retriever.search("narwhal", k=1)[0].source.endswith("new.txt")
    sources = {p[1] for p in passage_set(index)}
    assert not any(s.endswith("doc0002.txt") for s in sources)
    manifest = open_index(index).manifest
    assert manifest.documents == 6 and manifest.passages == len(passage_set(index))


def _committed_batches(store: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='committed_batches'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_sigkill_then_resume_matches_a_clean_build(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 60)
    index = tmp_path / "index"
    worker = [sys.executable, "-m", "tests.fixtures.indexes", str(corpus), str(index)]
    proc = subprocess.Popen([*worker, "--delay", "0.1"], cwd=REPO, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _committed_batches(index / "store.sqlite") < 5:
        assert proc.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "no batches committed within 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (index / "CURRENT").exists(), "nothing is published by a killed first run"
    conn = sqlite3.connect(index / "store.sqlite")
    kept = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
    conn.close()
    assert kept >= 5 * 8

    resumed = subprocess.run(worker, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    clean = tmp_path / "clean"
    report = run_index_job(
        [corpus],
        clean,
        IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8),
        embedder=HashEmbedder(),
    )
    got, want = passage_set(index), passage_set(clean)
    assert got == want
    assert len({p[0] for p in got}) == len(got), "duplicate passage ids"
    assert f'"passages_embedded": {report.passages - kept}' in resumed.stdout


def _doc_set(index: Path) -> tuple[int, frozenset[str]]:
    """Open the index like a service would and check it is internally whole."""
    import faiss

    reader = open_index(index)
    mapped: Any = faiss.downcast_index(reader.faiss)
    ids = faiss.vector_to_array(mapped.id_map)
    passages = reader.store.passages_by_ids(ids.tolist())
    assert len(passages) == len(ids) == reader.manifest.passages
    return reader.generation, frozenset(p.doc_id for p in passages.values())


@pytest.mark.slow
def test_readers_see_whole_generations_during_a_job(tmp_path: Path) -> None:
    index = tmp_path / "index"
    old_docs = [
        make_document(f"a{i}", f"A {i}", f"a/{i}.txt", f"alpha text {i}. " * 30) for i in range(8)
    ]
    new_docs = [
        make_document(f"b{i}", f"B {i}", f"b/{i}.txt", f"beta text {i}. " * 30) for i in range(8)
    ]
    index_documents(old_docs, index, CONFIG, embedder=HashEmbedder())
    old = frozenset(d.doc_id for d in old_docs)
    new = frozenset(d.doc_id for d in new_docs)
    early = load_retriever(index, mode="bm25")

    job = threading.Thread(
        target=index_documents,
        args=(new_docs, index, CONFIG),
        kwargs={"embedder": HashEmbedder(delay=0.05)},
    )
    job.start()
    seen: list[tuple[int, frozenset[str]]] = []
    while job.is_alive():
        seen.append(_doc_set(index))
        # the reader opened before the job keeps a consistent view of its generation
        assert {h.doc_id for h in early.search("alpha text", k=20)} <= old
    job.join()
    seen.append(_doc_set(index))
    assert all(docs == (old if gen == 1 else new) for gen, docs in seen), seen
    assert seen[0][0] == 1 and seen[-1][0] == 2
    assert {p.doc_id for p in early.document_passages("a3")} == {"a3"}
    assert early.is_stale() and not load_retriever(index, mode="bm25").is_stale()


def test_changed_settings_are_refused_until_rebuild(tmp_path: Path) -> None:
    index = tmp_path / "index"
    docs = [make_document("d", "D", "d.txt", "Some words about experts and routers. " * 10)]
    index_documents(docs, index, CONFIG, embedder=HashEmbedder())
    other = IndexConfig(batch_size=8, max_tokens=20, overlap_tokens=4)
    with pytest.raises(ManifestMismatchError, match="--rebuild") as caught:
        index_documents(docs, index, other, embedder=HashEmbedder())
    assert "keep the old settings with --max-tokens 40 --overlap 8" in str(caught.value)
    with pytest.raises(ManifestMismatchError, match="embedder_id") as caught:
        index_documents(docs, index, CONFIG, embedder=HashEmbedder(dim=32, name="other"))
    # the value to pass back is the spec that built the index (stored with it), not an id
    assert "keep the old settings with --embedder hash-64" in str(caught.value)
    embedder = HashEmbedder(dim=32, name="other")
    rebuild = IndexConfig(batch_size=8, max_tokens=20, overlap_tokens=4, rebuild=True)
    report = index_documents(docs, index, rebuild, embedder=embedder)
    assert report.published and report.passages == embedder.passages_embedded
    reader = open_index(index, embedder=embedder)
    assert reader.manifest.dim == 32 and reader.manifest.chunking.max_tokens == 20


@pytest.mark.parametrize("spec", ["HNSW16", "IVF4,Flat"])
def test_explicit_index_spec_and_vectors_are_normalised(tmp_path: Path, spec: str) -> None:
    index = tmp_path / "index"
    docs = [
        make_document(f"d{i}", f"D{i}", f"{i}.txt", f"token{i} words here. " * 20)
        for i in range(60)
    ]
    config = IndexConfig(index_spec=spec, batch_size=32, max_tokens=20, overlap_tokens=2)
    report = index_documents(docs, index, config, embedder=HashEmbedder())
    assert report.factory == f"IDMap2,{spec}"
    reader = open_index(index)  # also verifies the loaded index against the manifest
    vectors = np.concatenate([v for _ids, v in reader.store.iter_vectors(64)])
    assert len(vectors) == report.passages
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    hits = load_retriever(index, mode="dense", embedder=HashEmbedder()).search("token3 words", k=5)
    assert "d3" in {h.doc_id for h in hits}  # 64 hashed dims: another doc may collide and tie


def test_unreadable_files_are_skipped_and_reported(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 3)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 8)
    report = run_index_job([corpus], tmp_path / "index", CONFIG, embedder=HashEmbedder())
    skipped = {Path(s.source).name: s.reason for s in report.skipped}
    assert {"broken.pdf", "binary.txt"} <= set(skipped), report.skipped
    assert all(reason for reason in skipped.values())
    assert report.added == 3 and report.published
