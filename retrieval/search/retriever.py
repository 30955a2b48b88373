"""`FaissRetriever`: dense, BM25 or hybrid search over one published index generation.

Hybrid is reciprocal rank fusion (k=60) of the dense and BM25 rankings, each cut at depth
100: robust to the two scores living on different scales, and the best single-shot line in
our baseline measurements. Filters are applied after retrieval; the retriever over-fetches
and widens until it has `k` matching hits or has seen the whole index.

Thread-safe for concurrent searches: FAISS and bm25s searches only read, SQLite
connections are per thread, and query embedding is serialised behind a lock because not
every embedding runtime tolerates concurrent calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from retrieval.disk.generation import IndexReader, open_index
from retrieval.disk.layout import read_current
from retrieval.disk.vectors import search_one
from retrieval.types import Embedder, Hit, Passage, SearchFilters

Mode = Literal["hybrid", "dense", "bm25"]
RRF_K = 60
RRF_DEPTH = 100


def passes(passage: Passage, filters: SearchFilters | None) -> bool:
    if filters is None:
        return True
    if filters.doc_ids and passage.doc_id not in filters.doc_ids:
        return False
    return not (filters.source_prefix and not passage.source.startswith(filters.source_prefix))


def rrf(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of id rankings, best first (ties broken by first appearance)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank + 1)
    return sorted(scores.items(), key=lambda item: -item[1])


class FaissRetriever:
    """Implements `retrieval.types.Retriever` over an `IndexReader`."""

    def __init__(
        self,
        reader: IndexReader,
        *,
        mode: Mode = "hybrid",
        embedder: Embedder | None = None,
        model_cache: Path | None = None,
    ) -> None:
        if mode not in ("hybrid", "dense", "bm25"):
            raise ValueError(f"mode must be 'hybrid', 'dense' or 'bm25', got {mode!r}")
        if mode != "bm25":
            if embedder is None:
                from retrieval.embedders import load_embedder

                embedder = load_embedder(reader.manifest.embedder_spec, cache_dir=model_cache)
            reader.manifest.check_embedder(embedder)
        self.reader = reader
        self.mode: Mode = mode
        self.embedder = embedder
        self._embed_lock = threading.Lock()

    @property
    def size(self) -> int:
        return self.reader.manifest.passages

    def is_stale(self) -> bool:
        """True once a newer generation is published: reopen with `load_retriever` to see
        it (this one stays consistent until the generation after next purges its rows)."""
        current = read_current(self.reader.index_dir)
        return current is None or current[0] != self.reader.generation

    # -- search -------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        if k <= 0 or not query.strip() or self.size == 0:
            return []
        if self.mode == "dense":
            return self._filtered(self._dense, query, k, filters)
        if self.mode == "bm25":
            return self._filtered(self.reader.bm25.search, query, k, filters)
        depth = max(RRF_DEPTH, k)
        dense = self._filtered(self._dense, query, depth, filters)
        sparse = self._filtered(self.reader.bm25.search, query, depth, filters)
        by_id = {h.passage_id: h for h in dense + sparse}
        fused = rrf([[h.passage_id for h in dense], [h.passage_id for h in sparse]])
        return [replace(by_id[pid], score=score) for pid, score in fused[:k]]

    def _dense(self, query: str, depth: int) -> list[tuple[int, float]]:
        assert self.embedder is not None
        with self._embed_lock:
            vector = np.asarray(self.embedder.embed_queries([query]), dtype=np.float32)
        vector = vector.reshape(1, -1)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        scores, ids = search_one(self.reader.faiss, vector, min(depth, self.size))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _filtered(
        self,
        ranker: Callable[[str, int], list[tuple[int, float]]],
        query: str,
        k: int,
        filters: SearchFilters | None,
    ) -> list[Hit]:
        """Top `k` hits passing `filters`, widening the candidate depth as needed."""
        depth = k if _no_filters(filters) else max(4 * k, 50)
        while True:
            ranked = ranker(query, depth)
            passages = self.reader.store.passages_by_ids([pid for pid, _ in ranked])
            hits = [
                Hit.scored(passages[pid], score)
                for pid, score in ranked
                if pid in passages and passes(passages[pid], filters)
            ]
            if len(hits) >= k or len(ranked) < depth or depth >= self.size:
                return hits[:k]
            depth = min(depth * 4, self.size)

    # -- passages -----------------------------------------------------------------------
    def get_passage(self, passage_id: int) -> Passage | None:
        return self.reader.store.get_passage(passage_id)

    def neighbours(self, passage_id: int, window: int = 1) -> list[Passage]:
        passage = self.get_passage(passage_id)
        if passage is None:
            return []
        window = max(0, window)
        return self.reader.store.ordinal_range(
            passage.doc_id, passage.ordinal - window, passage.ordinal + window
        )

    def document_passages(self, doc_id: str) -> list[Passage]:
        return self.reader.store.document_passages(doc_id)


def _no_filters(filters: SearchFilters | None) -> bool:
    return filters is None or (not filters.doc_ids and not filters.source_prefix)


def load_retriever(
    index_dir: Path | str,
    *,
    mode: Mode = "hybrid",
    embedder: Embedder | None = None,
    model_cache: Path | None = None,
) -> FaissRetriever:
    """Open the published index at `index_dir`. Without `embedder`, dense and hybrid modes
    load the one named in the manifest (building its model, if it has one, in `model_cache`)."""
    reader = open_index(index_dir, embedder=embedder)
    return FaissRetriever(reader, mode=mode, embedder=embedder, model_cache=model_cache)
