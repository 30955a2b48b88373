"""Scale-out of the embed phase on Ray Data (optional extra: `pip install thinkrag[ray]`).

The scan phase runs locally as usual: it chunks each new document once and records the
spans in the store. `RayBackend` then ships the pending passages to Ray in groups with
`ray.data.from_items`, embeds them with `map_batches` on a small actor pool (each actor
loads the embedder once and runs the shared `embed_passages` step), and hands the vectors
back to the job, which commits them through the same store code as the local backend,
batch by batch. So resume, incremental runs and atomic publication behave the same; only
where the embedding runs changes. Groups bound the driver's memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.disk.passage_writer import NewPassage
from retrieval.errors import RetrievalError
from retrieval.indexing.embedding import batched, embed_passages
from retrieval.types import Embedder, Vectors

PASSAGES_PER_GROUP = 2048


class EmbedActor:
    """Ray actor: embed a batch of (title, text) rows, keeping each row's position."""

    def __init__(self, factory: Callable[[], Embedder]) -> None:
        self.embedder = factory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = [(str(t), str(x)) for t, x in zip(batch["title"], batch["text"], strict=True)]
        return {
            "row": np.asarray(batch["row"], dtype=np.int64),
            "vector": embed_passages(self.embedder, pairs),
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


class RayBackend:
    """`EmbedBackend` on a Ray cluster.

    Actors load the embedder from `embedder_spec`; with `ship_embedder` (an embedder
    object given by the caller, e.g. a test fake) they receive a pickled copy instead."""

    def __init__(
        self,
        address: str,
        embedder: Embedder,
        embedder_spec: str | None,
        *,
        batch_size: int,
        concurrency: int = 1,
        ship_embedder: bool = False,
        model_cache: Path | None = None,
    ) -> None:
        self.ray = _connect(address)
        if ship_embedder or embedder_spec is None:
            self.factory: Callable[[], Embedder] = functools.partial(_same, embedder)
        else:
            from retrieval.embedders import load_embedder

            self.factory = functools.partial(load_embedder, embedder_spec, cache_dir=model_cache)
        self.batch_size = batch_size
        self.concurrency = concurrency

    def embed(self, passages: Iterable[NewPassage]) -> Iterator[tuple[list[NewPassage], Vectors]]:
        for group in batched(passages, PASSAGES_PER_GROUP):
            items = [{"row": n, "title": p.title, "text": p.text} for n, p in enumerate(group)]
            dataset = self.ray.data.from_items(items).map_batches(
                EmbedActor,
                fn_constructor_args=(self.factory,),
                batch_size=self.batch_size,
                batch_format="numpy",
                concurrency=self.concurrency,
            )
            for out in dataset.iter_batches(batch_size=self.batch_size, batch_format="numpy"):
                rows = [group[int(n)] for n in out["row"]]
                yield rows, np.asarray(out["vector"], dtype=np.float32)
