"""Scale-out of the embed phase on Ray Data (optional extra: `pip install thinkrag[ray]`).

The scan phase runs locally as usual (it writes pending documents to the store). Pending
documents are then shipped to Ray in groups with `ray.data.from_items`, chunked and embedded
by `map_batches` on a small actor pool (each actor loads the embedder once), and the
vectors come back to the driver, which commits them through the same store code as the
local path, batch by batch. So resume, incremental runs and atomic publication behave the
same; only where the embedding runs changes. Groups bound the driver's memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from retrieval.disk.passages import NewPassage, StoreWriter
from retrieval.errors import RetrievalError
from retrieval.indexing.job_types import IndexConfig, IndexReport, JobProgress
from retrieval.types import Embedder

DOCS_PER_GROUP = 256
DOCS_PER_RAY_BATCH = 8


class ChunkEmbed:
    """Ray actor: chunk a batch of documents and embed their passages."""

    def __init__(
        self, factory: Callable[[], Embedder], max_tokens: int, overlap: int, batch_size: int
    ) -> None:
        self.embedder = factory()
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from retrieval.indexing.chunking import chunk_text
        from retrieval.indexing.embedding import embed_passages

        version_ids: list[int] = []
        ordinals: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        texts: list[str] = []
        pairs: list[tuple[str, str]] = []
        for vid, title, text in zip(
            batch["version_id"], batch["title"], batch["text"], strict=True
        ):
            spans = chunk_text(str(text), max_tokens=self.max_tokens, overlap_tokens=self.overlap)
            for ordinal, span in enumerate(spans):
                version_ids.append(int(vid))
                ordinals.append(ordinal)
                starts.append(span.start)
                ends.append(span.end)
                texts.append(str(text)[span.start : span.end])
                pairs.append((str(title), texts[-1]))
        dim = self.embedder.dim
        parts = [
            embed_passages(self.embedder, pairs[i : i + self.batch_size])
            for i in range(0, len(pairs), self.batch_size)
        ]
        vectors = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
        return {
            "version_id": np.asarray(version_ids, dtype=np.int64),
            "ordinal": np.asarray(ordinals, dtype=np.int64),
            "start": np.asarray(starts, dtype=np.int64),
            "end": np.asarray(ends, dtype=np.int64),
            "text": np.asarray(texts, dtype=object),
            "vector": vectors,
        }


def _same(embedder: Embedder) -> Embedder:
    return embedder


def _connect(address: str) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RetrievalError(
            "--ray needs Ray; install it with `pip install 'thinkrag[ray]'`"
        ) from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise RetrievalError(
                f"cannot reach a Ray cluster at {address!r} ({exc}); start one with "
                "`ray start --head` or drop --ray"
            ) from exc
    return ray


def embed_pending_with_ray(
    store: StoreWriter,
    embedder: Embedder,
    embedder_spec: str | None,
    config: IndexConfig,
    target: int,
    progress: JobProgress,
    report: IndexReport,
    *,
    ship_embedder: bool = False,
) -> None:
    """Embed every pending document on Ray and commit the vectors locally.

    Actors load the embedder from `embedder_spec`; with `ship_embedder` (an embedder
    object given by the caller, e.g. a test fake) they receive a pickled copy instead."""
    assert config.ray_address is not None
    ray = _connect(config.ray_address)
    if ship_embedder or embedder_spec is None:
        factory: Callable[[], Embedder] = functools.partial(_same, embedder)
    else:
        from retrieval.embedders import load_embedder

        factory = functools.partial(load_embedder, embedder_spec)
    progress.embedding(store.pending_passage_count())
    pending = store.pending_version_ids()
    for start in range(0, len(pending), DOCS_PER_GROUP):
        group = [store.pending_version(v) for v in pending[start : start + DOCS_PER_GROUP]]
        have = {p.version_id: store.existing_ordinals(p.version_id) for p in group}
        info = {p.version_id: p for p in group}
        remaining = {p.version_id: p.n_passages - len(have[p.version_id]) for p in group}
        items = [
            {"version_id": p.version_id, "title": p.title, "text": p.text}
            for p in group
            if remaining[p.version_id] > 0
        ]
        done = [vid for vid, left in remaining.items() if left <= 0]
        if done:
            store.commit_batch([], np.zeros((0, embedder.dim), np.float32), done, target)
        if not items:
            continue
        dataset = ray.data.from_items(items).map_batches(
            ChunkEmbed,
            fn_constructor_args=(
                factory,
                config.max_tokens,
                config.overlap_tokens,
                config.batch_size,
            ),
            batch_size=DOCS_PER_RAY_BATCH,
            batch_format="numpy",
            concurrency=config.ray_concurrency,
        )
        for out in dataset.iter_batches(batch_size=config.batch_size, batch_format="numpy"):
            rows: list[NewPassage] = []
            keep: list[int] = []
            for i, vid in enumerate(out["version_id"]):
                vid, ordinal = int(vid), int(out["ordinal"][i])
                if ordinal in have[vid]:
                    continue
                have[vid].add(ordinal)
                pending_doc = info[vid]
                rows.append(
                    NewPassage(
                        version_id=vid,
                        doc_id=pending_doc.doc_id,
                        content_hash=pending_doc.content_hash,
                        title=pending_doc.title,
                        ordinal=ordinal,
                        start=int(out["start"][i]),
                        end=int(out["end"][i]),
                        text=str(out["text"][i]),
                    )
                )
                keep.append(i)
                remaining[vid] -= 1
            finished = [vid for vid in {r.version_id for r in rows} if remaining[vid] <= 0]
            vectors = np.asarray(out["vector"], dtype=np.float32)[keep]
            store.commit_batch(rows, vectors, finished, target)
            report.passages_embedded += len(rows)
            progress.advance(len(rows))
