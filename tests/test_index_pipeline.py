"""The job's embed phase is a bounded pipeline: the next batch is embedded on a worker
thread while the job's thread commits the previous one, with at most `depth` batches in
flight, input order kept, and an embedder failure stopping the job with what was committed
kept for the rerun.

Overlap is shown by events, not by timing: the job's thread holds a batch uncommitted
until it sees the worker start on the next one, which a sequential loop never does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval.disk.passage_writer import NewPassage
from retrieval.errors import EmbedderError
from retrieval.indexing.embedding import LocalBackend
from retrieval.indexing.job import index_documents
from retrieval.indexing.job_types import IndexConfig
from retrieval.types import Vectors
from testing.contract import make_document
from testing.embedder import HashEmbedder


class WatchedEmbedder(HashEmbedder):
    """Records which thread embeds each batch and signals when batch `n` starts; can fail
    on one batch."""

    def __init__(self, fail_on: int | None = None) -> None:
        super().__init__(dim=16)
        self.started: list[threading.Event] = [threading.Event() for _ in range(64)]
        self.threads: list[str] = []
        self.fail_on = fail_on
        self.calls = 0

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        n = self.calls
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        self.started[n].set()
        if n == self.fail_on:
            raise EmbedderError("the model ran out of memory on this batch")
        return super().embed_passages(texts)


def _passages(n: int) -> list[NewPassage]:
    return [
        NewPassage(i, f"d{i}", "h", f"Title {i}", 0, 0, 10, f"passage {i} about topic {i % 5}")
        for i in range(n)
    ]


def test_next_batch_embeds_while_the_previous_one_is_committed() -> None:
    embedder = WatchedEmbedder()
    backend = LocalBackend(embedder, batch_size=4, depth=2)
    got: list[NewPassage] = []
    for i, (batch, vectors) in enumerate(backend.embed(_passages(20))):
        if i + 1 < 5:  # while "committing" batch i, the worker must start on batch i + 1
            assert embedder.started[i + 1].wait(timeout=30), f"batch {i + 1} did not start"
        assert vectors.shape == (len(batch), 16)
        got += batch
    assert [p.version_id for p in got] == list(range(20))
    assert embedder.calls == 5
    assert all(name.startswith("thinkrag-embed") for name in embedder.threads)
    reference = HashEmbedder(dim=16).embed_passages([f"{p.title}\n{p.text}" for p in got])
    again = np.vstack([v for _, v in LocalBackend(HashEmbedder(dim=16), 4).embed(got)])
    np.testing.assert_allclose(again, reference, atol=1e-6)


def test_in_flight_batches_are_bounded_by_depth() -> None:
    embedder = WatchedEmbedder()
    backend = LocalBackend(embedder, batch_size=2, depth=3)
    stream = backend.embed(_passages(40))
    next(stream)
    # the job holds the first batch: only `depth` batches were taken from the store
    assert embedder.started[2].wait(timeout=30)
    assert not embedder.started[3].wait(timeout=0.5)
    stream.close()  # an abandoned job stops the pipeline
    assert embedder.calls <= 4
    with pytest.raises(ValueError, match="depth"):
        LocalBackend(embedder, 2, depth=0)


def test_embedder_failure_stops_the_job_and_keeps_committed_batches(tmp_path: Path) -> None:
    docs = [make_document(f"d{i}", f"T{i}", f"d{i}.txt", f"text {i} " * 5) for i in range(12)]
    index = tmp_path / "index"
    config = IndexConfig(batch_size=2, max_tokens=40, overlap_tokens=8)
    failing = WatchedEmbedder(fail_on=3)
    with pytest.raises(EmbedderError, match="out of memory"):
        index_documents(docs, index, config, embedder=failing)
    rerun = WatchedEmbedder()
    report = index_documents(docs, index, config, embedder=rerun)
    # batches 0-2 were committed before the failure (batch 4 may also have been embedded
    # but was never committed): the rerun embeds only what is missing
    assert report.published and report.passages == 12
    assert report.passages_embedded == rerun.passages_embedded <= 12 - 3 * 2
