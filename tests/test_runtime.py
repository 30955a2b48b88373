"""The composition root: one runtime per process, built from one `Settings`.

`thinkrag serve` must load the index's embedder once (counted at a real OpenAI-compatible
embeddings server: every `OpenAIEmbedder` sends one dimension probe when it is built),
the settings module must be the only reader of the environment, and fetch_url must be
switchable from the environment, the TOML file and the CLI.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serving.runtime import build_runtime
from serving.settings import Settings, load_settings
from testing.contract import contract_documents
from testing.scripted import ScriptedModelServer
from tests.test_service_support import REPO, free_port

PROBE = "dimension probe"  # what OpenAIEmbedder embeds once, when it is built


@dataclass
class EmbeddingServer:
    """A real /v1/embeddings server with hashed bag-of-words vectors; counts probes."""

    url: str = ""
    inputs: list[str] = field(default_factory=list)

    @property
    def loads(self) -> int:
        return self.inputs.count(PROBE)

    @staticmethod
    def vector(text: str, dim: int = 16) -> list[float]:
        vec = [0.0] * dim
        for word in text.lower().split():
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
        return vec if any(vec) else [1.0] + [0.0] * (dim - 1)


@pytest.fixture
def embedding_server() -> Iterator[EmbeddingServer]:
    state = EmbeddingServer()
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        texts = (await request.json())["input"]
        state.inputs.extend(texts)
        data = [{"index": i, "embedding": state.vector(t)} for i, t in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data, "model": "counted"})

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the embeddings server did not start"
        time.sleep(0.02)
    state.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1"
    yield state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def counted_index(tmp_path: Path, embedding_server: EmbeddingServer) -> Path:
    """A real index whose manifest names the counting server's embedder."""
    from retrieval.indexing.job import index_documents
    from retrieval.indexing.job_types import IndexConfig

    index_dir = tmp_path / "index"
    spec = f"openai:{embedding_server.url}#counted"
    index_documents(contract_documents(), index_dir, IndexConfig(embedder_spec=spec))
    embedding_server.inputs.clear()
    return index_dir


def test_thinkrag_serve_loads_the_embedder_once(
    tmp_path: Path, counted_index: Path, embedding_server: EmbeddingServer
) -> None:
    port = free_port()
    argv = [sys.executable, "-c", "from serving.cli import main; main()", "serve",
            "--index", str(counted_index),
            "--port", str(port), "--skip-model-check", "--no-fetch-url"]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "THINKRAG_DB_PATH": str(tmp_path / "db")}
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 180  # a cold start imports faiss; CI machines are shared
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "thinkrag serve did not become healthy"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        hits = httpx.post(
            f"http://127.0.0.1:{port}/v1/search", json={"query": "Freedonia capital", "k": 2}
        )
        assert hits.status_code == 200, hits.text
        assert hits.json()["hits"], "the served retriever found nothing"
    finally:
        proc.terminate()
        proc.wait(15)
    # One load at start-up (the index check and the app share it), then only the query.
    assert embedding_server.loads == 1, embedding_server.inputs
    assert "Freedonia capital" in embedding_server.inputs


def test_a_runtime_builds_its_retriever_once(
    counted_index: Path, embedding_server: EmbeddingServer, tmp_path: Path
) -> None:
    runtime = build_runtime(Settings(index_dir=counted_index, db_path=tmp_path / "db"))
    assert embedding_server.loads == 0  # nothing is loaded until something needs it
    parts = runtime.components()
    assert runtime.components() is parts and parts.retriever is runtime.retriever
    assert parts.engine is runtime.components().engine
    assert embedding_server.loads == 1


RUNTIME_PACKAGES = ("agent", "retrieval", "serving", "evaluation", "corpora")
ENV_ACCESS = re.compile(r"\bos\.environ\b|\benviron\s*\[|\bgetenv\b|\bputenv\b|\benvvar\s*=")


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = []
    for package in RUNTIME_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "serving" / "settings.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if ENV_ACCESS.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "read the environment in serving/settings.py instead:\n" + "\n".join(
        offenders
    )


def test_cache_root_is_one_rule_for_models_and_eval_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.models.local import cache_root

    monkeypatch.delenv("THINKRAG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    settings = load_settings()
    assert settings.cache_root == tmp_path / "xdg" / "thinkrag"
    assert settings.eval_index_cache == settings.cache_root / "eval-index"
    assert cache_root() == settings.cache_root  # local models: the same rule
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # set but empty: not set
    assert load_settings().cache_root == Path.home() / ".cache" / "thinkrag"
    monkeypatch.setenv("THINKRAG_CACHE", str(tmp_path / "mine"))
    assert load_settings().eval_index_cache == tmp_path / "mine" / "eval-index"
    assert cache_root() == tmp_path / "mine"


def test_the_config_path_is_passed_without_touching_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.delenv("THINKRAG_CONFIG", raising=False)
    config = tmp_path / "s.toml"
    config.write_text('profile = "local"\n')
    assert load_settings(config).profile == "local"
    assert "THINKRAG_CONFIG" not in os.environ
    monkeypatch.setenv("THINKRAG_CONFIG", str(config))
    assert load_settings().profile == "local"  # the variable still names a file


def test_fetch_url_is_enabled_from_env_toml_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def agent(**flags: object) -> tuple[bool, tuple[str, ...]]:
        config = build_runtime(load_settings(**flags)).agent_config  # type: ignore[arg-type]
        return config.enable_fetch_url, config.fetch_allow_hosts

    assert agent() == (False, ())  # off by default
    toml = tmp_path / "s.toml"
    toml.write_text('enable_fetch_url = true\nfetch_allow_hosts = ["wiki.internal"]\n')
    assert agent(config=toml) == (True, ("wiki.internal",))
    monkeypatch.setenv("THINKRAG_ENABLE_FETCH_URL", "1")
    monkeypatch.setenv("THINKRAG_FETCH_ALLOW_HOSTS", "10.0.0.0/8, wiki.internal")
    assert agent() == (True, ("10.0.0.0/8", "wiki.internal"))
    assert agent(enable_fetch_url=False) == (False, ("10.0.0.0/8", "wiki.internal"))


@pytest.mark.parametrize("enabled", [True, False])
def test_ask_fetch_url_flag_offers_the_tool(
    enabled: bool,
    scripted_model: Callable[..., ScriptedModelServer],
    contract_index: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from serving.cli import app
    from testing.scripted import ScriptedTurn
    from tests.agent_support import call

    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("fetch_url", url="http://127.0.0.1:9/admin"),)),
            ScriptedTurn(content="Nothing to fetch."),
        ]
    )
    monkeypatch.setenv("THINKRAG_RETRIEVER_MODE", "bm25")  # the index's embedder is test-only
    monkeypatch.chdir(tmp_path)
    flag = "--fetch-url" if enabled else "--no-fetch-url"
    args = ["ask", "q?", "--index", str(contract_index), "--model", server.base_url, flag]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    if enabled:  # the tool ran, and its address policy refused the loopback target
        assert "refusing 127.0.0.1 (127.0.0.1): loopback" in result.output
    else:
        assert "there is no tool named 'fetch_url'" in result.output
