"""`HashEmbedder`: a deterministic, model-free `Embedder` for tests and benchmarks.

Hashed words (and CJK characters) make it lexical, so tests can predict what a query finds
without loading a model; it counts what it embedded so job tests can assert on re-use.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence

import numpy as np

from retrieval.types import Vectors

_WORD = re.compile(r"[\u3400-\u9fff]|[^\W_]+")


class HashEmbedder:
    """Bag of hashed words (and CJK characters), signed, L2-normalised. Deterministic,
    lexical, and fast; `delay` seconds per batch slows a job down for kill tests."""

    def __init__(self, dim: int = 64, *, delay: float = 0.0, name: str = "hash") -> None:
        self._dim = dim
        self._name = name
        self.delay = delay
        self.passage_calls = 0
        self.passages_embedded = 0
        self.embedded_texts: list[str] = []

    @property
    def id(self) -> str:
        return f"{self._name}-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def normalized(self) -> bool:
        return True

    def _embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "big")
                out[row, h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if self.delay:
            time.sleep(self.delay)
        self.passage_calls += 1
        self.passages_embedded += len(texts)
        self.embedded_texts.extend(texts)
        return self._embed(texts)
