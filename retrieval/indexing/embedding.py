"""The embed step every backend shares: passage -> embedder text -> checked, unit vectors.

The local loop and the Ray actors both call `embed_passages`, so an index embedded either
way holds the same vectors for the same passages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.errors import EmbedderError
from retrieval.types import Embedder, Vectors


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
