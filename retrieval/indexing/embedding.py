"""The embed step every backend shares: passage -> embedder text -> checked, unit vectors,
and the port (`EmbedBackend`) that says where it runs.

The local loop and the Ray actors both call `embed_passages` on passages the scan already
chunked, so an index embedded either way holds the same vectors for the same passages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

import numpy as np

from retrieval.disk.passage_writer import NewPassage
from retrieval.errors import EmbedderError
from retrieval.types import Embedder, Vectors

T = TypeVar("T")


def embedder_text(title: str, text: str) -> str:
    """What the embedder sees for a passage: its document title, then the passage."""
    return f"{title}\n{text}"


def normalise(vectors: Vectors, dim: int, expected_rows: int) -> Vectors:
    """L2-normalised float32 rows, or `EmbedderError` when the embedder returned a wrong shape."""
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    if vecs.shape != (expected_rows, dim):
        raise EmbedderError(
            f"the embedder returned shape {vecs.shape}, expected ({expected_rows}, {dim}); "
            "check the --embedder spec"
        )
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.maximum(norms, 1e-12)


def embed_passages(embedder: Embedder, passages: Sequence[tuple[str, str]]) -> Vectors:
    """Vectors for `(title, text)` passages, one row each (an empty batch is a 0-row array)."""
    if not passages:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    texts = [embedder_text(title, text) for title, text in passages]
    return normalise(embedder.embed_passages(texts), embedder.dim, len(texts))


class EmbedBackend(Protocol):
    """Where the embed phase runs. Given the store's pending passages (already chunked at
    scan time), yield them back in batches with one unit vector per passage; the job
    commits each yielded batch in one transaction, so a backend holds no state worth
    keeping across a kill. Implementations: `LocalBackend` here, `RayBackend` in
    `retrieval.indexing.ray_backend`."""

    def embed(
        self, passages: Iterable[NewPassage]
    ) -> Iterator[tuple[list[NewPassage], Vectors]]: ...


class LocalBackend:
    """Embeds in this process, `batch_size` passages at a time, as a bounded pipeline: one
    worker thread embeds (tokenising included) while the caller's thread reads the next
    passages from the store and commits the previous batch, with at most `depth` batches
    in flight. Runtimes release the GIL while they compute, so the store work fills the
    gaps instead of adding to the embedding time."""

    def __init__(self, embedder: Embedder, batch_size: int, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"pipeline depth must be >= 1, got {depth}")
        self.embedder = embedder
        self.batch_size = batch_size
        self.depth = depth

    def embed(self, passages: Iterable[NewPassage]) -> Iterator[tuple[list[NewPassage], Vectors]]:
        def work(batch: list[NewPassage]) -> Vectors:
            return embed_passages(self.embedder, [(p.title, p.text) for p in batch])

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thinkrag-embed")
        inflight: deque[tuple[list[NewPassage], Future[Vectors]]] = deque()
        try:
            for batch in batched(passages, self.batch_size):
                inflight.append((batch, pool.submit(work, batch)))
                if len(inflight) >= self.depth:
                    done, future = inflight.popleft()
                    yield done, future.result()
            while inflight:
                done, future = inflight.popleft()
                yield done, future.result()
        finally:
            # a failed or abandoned job drops what is queued; the batch running finishes
            pool.shutdown(wait=True, cancel_futures=True)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
