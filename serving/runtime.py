"""The composition root: `build_runtime(settings)` builds what every entry point runs on.

`serve`, `ask`, `eval`, `search` and `model` all start here, so the profile is resolved
once, a local vLLM is started from one place (`Runtime.start_local_model`), and the index
and its embedder are loaded once per process (`Runtime.retriever`; `thinkrag serve` checks
the index with the same retriever its app then serves). `Settings` is the only reader of
the environment; this module turns it into the typed configs the inner packages take.
Kept apart from `app.py` so the CLI can fail fast before uvicorn starts and tests can
swap a part (`create_app(settings, components=...)`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from agent.config import AgentConfig
from agent.llm.types import ReasoningModel
from retrieval.types import Passage, Retriever
from serving.http.research import ResearchEngine
from serving.http.run_store import Store
from serving.settings import Settings, SettingsError, inherited_environment

if TYPE_CHECKING:
    from agent.mcp.hub import McpHub
    from agent.tools.base import Tool
    from serving.models.launcher import VLLMServer
    from serving.models.profiles import ModelProfile


class StartupError(RuntimeError):
    """A part the service needs is missing; the message says which and how to fix it."""


@dataclass
class Components:
    retriever: Retriever
    model: ReasoningModel
    engine: ResearchEngine
    index_label: str


def load_memory_passages(path: Path) -> list[Passage]:
    """Passages from JSONL (one object per line, `Passage` fields; `text` required)."""
    passages = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if not line.strip():
                continue
            row: dict[str, Any] = json.loads(line)
            text = str(row["text"])
            passages.append(
                Passage(
                    passage_id=int(row.get("passage_id", n + 1)),
                    doc_id=str(row.get("doc_id", f"doc{n + 1}")),
                    ordinal=int(row.get("ordinal", 0)),
                    title=str(row.get("title", "")),
                    text=text,
                    source=str(row.get("source", path.name)),
                    start=int(row.get("start", 0)),
                    end=int(row.get("end", len(text))),
                )
            )
    return passages


def build_retriever(settings: Settings) -> tuple[Retriever, str]:
    if settings.memory_passages is not None:
        from retrieval.search.memory import InMemoryRetriever

        if not settings.memory_passages.is_file():
            raise StartupError(
                f"memory passages file {settings.memory_passages} does not exist; "
                "point THINKRAG_MEMORY_PASSAGES at a JSONL file of passages"
            )
        return InMemoryRetriever(load_memory_passages(settings.memory_passages)), (
            f"memory:{settings.memory_passages.name}"
        )
    if settings.index_dir is None:
        raise StartupError(
            "no index configured: pass --index DIR (build one with `thinkrag index FOLDER "
            "--index DIR`) or set THINKRAG_INDEX_DIR"
        )
    from retrieval.errors import RetrievalError
    from retrieval.search.retriever import load_retriever

    try:
        query_embedder = None
        if settings.embedder and settings.retriever_mode != "bm25":
            from retrieval.embedders import load_embedder

            query_embedder = load_embedder(settings.embedder, cache_dir=settings.cache_root)
        retriever = load_retriever(
            settings.index_dir,
            mode=settings.retriever_mode,
            embedder=query_embedder,
            model_cache=settings.cache_root,
        )
    except RetrievalError as exc:  # EmbedderError included: the message names the fix
        raise StartupError(str(exc)) from exc
    return retriever, str(settings.index_dir)


def resolve_profile(settings: Settings) -> ModelProfile | None:
    """The configured profile, or None; an unknown name is a `SettingsError` listing them."""
    if not settings.profile:
        return None
    from serving.models.profiles import UnknownProfileError, get_profile

    try:
        return get_profile(settings.profile)
    except UnknownProfileError as exc:
        raise SettingsError(f"{exc} (--profile / THINKRAG_PROFILE)") from None


_AGENT_SETTINGS = (
    # server budget maxima
    "max_steps",
    "max_tool_calls",
    "max_total_tokens",
    "deadline_seconds",
    "top_k",
    # agent options a profile implies
    "protocol",
    "retrieval_first",
    # fetch_url
    "fetch_max_bytes",
    "fetch_timeout_seconds",
)


def agent_config_from(settings: Settings, profile: ModelProfile | None) -> AgentConfig:
    """Profile defaults for the agent side, then the settings on top (None: not set)."""
    from serving.models.agent_config import agent_config_for

    values: dict[str, Any] = {name: getattr(settings, name) for name in _AGENT_SETTINGS}
    if settings.enable_fetch_url:
        values["enable_fetch_url"] = True
    if settings.fetch_allow_hosts:
        values["fetch_allow_hosts"] = tuple(settings.fetch_allow_hosts)
    return agent_config_for(profile, **values)


async def check_model(settings: Settings, timeout: float = 5.0) -> str | None:
    """None when the model server answers `GET /models`, else what is wrong."""
    headers = {}
    if settings.model_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.model_api_key.get_secret_value()}"
    url = settings.model_url.rstrip("/") + "/models"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return f"cannot reach the model server at {url} ({type(exc).__name__})"
    if response.status_code != 200:
        return f"the model server at {url} answered HTTP {response.status_code}"
    return None


class Runtime:
    """What one process runs on, built from one `Settings` by `build_runtime`.

    Parts are built on first use and then kept: `eval` never opens the service's index,
    `model serve` never loads an embedder, and `serve` checks the index at start-up with
    the very retriever its app serves. A local vLLM started here is stopped by `close()`.
    """

    def __init__(self, settings: Settings, profile: ModelProfile | None) -> None:
        self.settings = settings
        self.profile = profile
        self.agent_config = agent_config_from(settings, profile)
        self._retriever: tuple[Retriever, str] | None = None
        self._components: Components | None = None
        self._server: VLLMServer | None = None
        self._mcp: McpHub | None = None

    # -- retrieval --------------------------------------------------------------------
    @property
    def retriever(self) -> Retriever:
        """The index (or in-memory passages) with its embedder, loaded once."""
        if self._retriever is None:
            self._retriever = build_retriever(self.settings)
        return self._retriever[0]

    @property
    def index_label(self) -> str:
        self.retriever  # noqa: B018 - builds it
        assert self._retriever is not None
        return self._retriever[1]

    # -- the model --------------------------------------------------------------------
    @property
    def model_name(self) -> str | None:
        if self.settings.model_name:
            return self.settings.model_name
        return self.profile.served_model_name if self.profile is not None else None

    @property
    def model_url_configured(self) -> bool:
        """True when a model URL was given (flag, environment or file), not defaulted."""
        return "model_url" in self.settings.model_fields_set

    @property
    def wants_local_model(self) -> bool:
        """A local profile with no model URL configured: vLLM is started here."""
        return self.profile is not None and self.profile.is_local and not self.model_url_configured

    @property
    def model_url(self) -> str:
        return self._server.base_url if self._server is not None else self.settings.model_url

    def local_server(self, *, port: int | None = None, host: str = "127.0.0.1") -> VLLMServer:
        """The vLLM server of the local profile (not started): the one place it is made."""
        from serving.models.launcher import LaunchError, VLLMServer

        if self.profile is None:
            raise LaunchError(
                "no model profile: pass --profile local (see `thinkrag model profiles`)"
            )
        if self._server is None:
            self._server = VLLMServer(
                self.profile,
                port=port,
                host=host,
                cache_dir=self.settings.cache_root,
                base_env=inherited_environment(),
            )
        return self._server

    def start_local_model(
        self, *, port: int | None = None, host: str = "127.0.0.1", timeout: float | None = None
    ) -> str:
        """Start vLLM for the local profile (once) and return its base URL; by default wait
        as long as the profile says its model takes to load."""
        server = self.local_server(port=port, host=host)
        return server.start(
            timeout=timeout if timeout is not None else server.profile.start_timeout
        )

    def model_client(self) -> ReasoningModel:
        """A new client of the model server (the local one once started)."""
        from agent.llm.client import OpenAIClient

        key = self.settings.model_api_key
        return OpenAIClient(
            self.model_url, self.model_name, api_key=key.get_secret_value() if key else None
        )

    # -- the agent --------------------------------------------------------------------
    def components(self, settings: Settings | None = None) -> Components:
        """Retriever, model client and agent, built once (`create_app`'s factory shape)."""
        if settings is not None and settings is not self.settings:
            raise ValueError("this runtime was built from other settings")
        if self._components is None:
            from agent.runner import ResearchAgent

            retriever = self.retriever
            model = self.model_client()
            checkpoints = self.settings.resolved_checkpoint_path
            checkpoints.parent.mkdir(parents=True, exist_ok=True)
            engine = ResearchAgent(
                model,
                retriever,
                self.agent_config,
                checkpoint_path=checkpoints,
                checkpoint_url=self.settings.postgres_url,  # replicas share Postgres
                tools=self.agent_tools(),
                keep_checkpoint_history=self.settings.checkpoint_history,
            )
            self._components = Components(
                retriever=retriever, model=model, engine=engine, index_label=self.index_label
            )
        return self._components

    def agent_tools(self) -> list[Tool] | None:
        """The default tools plus the configured MCP servers' tools (None: defaults only).
        The servers start once, here; one that fails to start is a logged warning."""
        if not self.settings.mcp_servers:
            return None
        import logging

        from agent.graph import default_tools
        from agent.mcp.hub import McpHub
        from agent.mcp.tool import make_tools

        if self._mcp is None:
            self._mcp = McpHub(self.settings.mcp_servers)
            for warning in self._mcp.start():  # the service starts without that server
                logging.getLogger(__name__).warning("%s", warning)
        return [*default_tools(self.agent_config), *make_tools(self._mcp)]

    def close(self) -> None:
        """Stop a vLLM server this runtime started (clients close with their owners)."""
        if self._mcp is not None:
            self._mcp.close()
            self._mcp = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_runtime(settings: Settings) -> Runtime:
    """The composition root: resolve the profile and the agent config now (so a bad name
    fails before anything starts); the index, embedder and model come on first use."""
    return Runtime(settings, resolve_profile(settings))


def build_store(settings: Settings) -> Store:
    """The service store: Postgres when a database URL is set (replicas share it), else
    the SQLite file at `db_path`. Raises `StoreError` naming the database and the fix."""
    url = settings.postgres_url
    if url is None:
        from serving.http.sqlite_store import SqliteStore

        return SqliteStore(settings.db_path)
    try:
        from serving.http.postgres_store import PostgresStore
    except ImportError as exc:
        raise StartupError(
            f"THINKRAG_DATABASE_URL needs the Postgres driver ({exc.name} is missing): "
            "pip install 'thinkrag[postgres]'"
        ) from exc
    return PostgresStore(url)


def check_store(settings: Settings) -> None:
    """Open the store once (migrating it) so a bad database fails before the server
    starts, as one `StartupError` line."""
    from serving.http.run_store import StoreError

    try:
        build_store(settings).close()
    except StoreError as exc:
        raise StartupError(str(exc)) from exc


def replica_name(settings: Settings) -> str:
    """This process's name in leases and metrics: unique per process, readable in logs."""
    import os
    import socket
    import uuid

    base = settings.replica_name or f"{socket.gethostname()}-{os.getpid()}"
    return f"{base}-{uuid.uuid4().hex[:6]}"


def build_components(settings: Settings) -> Components:
    """`create_app`'s default factory: a runtime's parts, for an app built from settings."""
    return build_runtime(settings).components()
