"""The one place the service reads its configuration: environment and an optional TOML file.

Precedence (highest first): explicit overrides (CLI flags) > `THINKRAG_*` environment >
TOML file (`--config FILE` or `THINKRAG_CONFIG`) > defaults. Inner packages never read
the environment (a test greps for it); `serving/runtime.py` turns this into typed configs
and passes them down: the agent's `AgentConfig`, the cache folder, the eval data folder,
and the base environment of the vLLM child process.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.mcp.config import McpServerConfig

RecoverPolicy = Literal["resume", "mark"]


class SettingsError(ValueError):
    """The configuration cannot work; the message says which setting to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THINKRAG_", extra="forbid", validate_default=True)

    # Network
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # What to serve
    index_dir: Path | None = None
    # A JSONL file of passages served by the in-memory retriever (demos and tests);
    # used instead of `index_dir` when set.
    memory_passages: Path | None = None
    retriever_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    profile: str | None = None
    model_url: str = "http://127.0.0.1:8000/v1"
    model_name: str | None = None
    model_api_key: SecretStr | None = None
    assistant_name: str = "thinkrag-research"

    # Durability
    db_path: Path = Path(".thinkrag/service.db")
    checkpoint_path: Path | None = None  # default: next to db_path
    # Every step's checkpoint of every thread (LangGraph history, time travel, forks);
    # False keeps only each thread's latest state.
    checkpoint_history: bool = True
    recover: RecoverPolicy = "resume"
    # Replicas: `postgresql://...` puts threads, runs, events and checkpoints in Postgres
    # (instead of db_path and checkpoint_path), shared by every replica that names it.
    database_url: SecretStr | None = None
    lease_seconds: float = Field(10.0, ge=0.5)  # a dead replica's runs move after this
    replica_name: str | None = None  # in leases and metrics; default: host and process id

    # Protection
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)  # comma-separated
    # /metrics shows service-wide totals (no per-key labels). When this is set, only
    # these keys may read them (they are API keys for every other route too); others get 404.
    metrics_api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allow_unauthenticated: bool = False  # serve a non-loopback host without keys
    max_request_bytes: int = Field(1_000_000, ge=1024)
    max_active_runs: int = Field(8, ge=1)
    max_queued_runs: int = Field(64, ge=0)
    max_runs_per_key: int = Field(8, ge=1)  # unfinished (queued + executing) runs per key
    # Slots one key may execute at once, so one key cannot starve the others; default:
    # half of max_active_runs (at least 1). Its other runs wait in the queue.
    max_active_runs_per_key: int | None = Field(None, ge=1)
    # Proxies whose X-Forwarded-For names the client (IPs or CIDRs). With keys off, the
    # client address is the caller's identity for rate and run limits; only a listed
    # peer may set it, so a direct caller cannot claim another address.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    requests_per_minute: int = Field(600, ge=1)
    failed_keys_per_minute: int = Field(30, ge=1)  # per client address, then 429
    # With keys configured, /healthz and /readyz show paths, the model URL and check
    # messages only to a caller with a valid key, unless this is set.
    public_health_details: bool = False
    readyz_cache_seconds: float = Field(5.0, ge=0)  # /readyz asks the model at most this often
    sse_keepalive_seconds: float = Field(15.0, gt=0)
    # A client has this long to send its request headers, and again its body; an idle
    # keep-alive connection closes after at most this long (serving/http/slow_clients.py).
    client_timeout_seconds: float = Field(15.0, gt=0)
    # Temporary threads (chat completions, Responses, stateless runs, /v1/runs without a
    # thread) are deleted with their runs, events and checkpoints once idle this long.
    temporary_thread_retention_seconds: float = Field(86_400.0, ge=0)

    # Budget maxima: a request may lower these, never raise them.
    max_steps: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=0)
    max_total_tokens: int | None = Field(None, ge=1)
    deadline_seconds: float | None = Field(None, gt=0)
    top_k: int | None = Field(None, ge=1)

    # OpenAI-compatible answers also carry the sources as a markdown list in `content`.
    openai_sources_in_content: bool = True

    # Agent options a profile implies, overridable per deployment (CLI: --protocol ...).
    protocol: Literal["tools", "json", "tags"] | None = None
    retrieval_first: bool | None = None
    # Query embedder spec instead of the one the index names (`thinkrag search --embedder`).
    embedder: str | None = None

    # fetch_url (off by default): the model may read public web pages; hosts or CIDR
    # networks in `fetch_allow_hosts` may be private (an intranet wiki).
    enable_fetch_url: bool = False
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fetch_max_bytes: int | None = Field(None, ge=1024)
    fetch_timeout_seconds: float | None = Field(None, gt=0)

    # MCP servers whose tools the agent may call (`[[mcp_servers]]` tables in the TOML
    # file, or THINKRAG_MCP_SERVERS as a JSON list); fields in `agent.mcp.config`.
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)

    # Files: the TOML file itself (`THINKRAG_CONFIG`), the cache (`THINKRAG_CACHE`, else
    # `$XDG_CACHE_HOME/thinkrag`, else ~/.cache/thinkrag: local models, eval indexes) and
    # the shared eval data folder (`THINKRAG_EVAL_DIR`).
    config: Path | None = None
    cache: Path | None = None
    xdg_cache_home: Path | None = Field(
        None, validation_alias=AliasChoices("xdg_cache_home", "XDG_CACHE_HOME")
    )
    eval_dir: Path | None = None

    @field_validator("config", "cache", "xdg_cache_home", "eval_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `XDG_CACHE_HOME=` (set but empty) means "not set", as the XDG spec says.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "api_keys",
        "metrics_api_keys",
        "cors_origins",
        "fetch_allow_hosts",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_only(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            return None
        if isinstance(text, str) and not text.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "must be a postgresql:// URL; leave it unset to keep the embedded SQLite "
                "store at THINKRAG_DB_PATH"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # The TOML path is itself a setting: an explicit `config=` wins over THINKRAG_CONFIG.
        init = getattr(init_settings, "init_kwargs", {})
        config = init.get("config") or env_settings().get("config")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    @property
    def cache_root(self) -> Path:
        """Where thinkrag caches built models and eval indexes (one rule for both)."""
        if self.cache is not None:
            return self.cache.expanduser()
        base = self.xdg_cache_home or Path.home() / ".cache"
        return base.expanduser() / "thinkrag"

    @property
    def eval_index_cache(self) -> Path:
        return self.cache_root / "eval-index"

    @property
    def resolved_checkpoint_path(self) -> Path:
        return self.checkpoint_path or self.db_path.with_name(
            self.db_path.stem + ".checkpoints.sqlite"
        )

    @property
    def postgres_url(self) -> str | None:
        """The Postgres URL when the store is Postgres, else None (the SQLite file)."""
        return None if self.database_url is None else self.database_url.get_secret_value()

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def active_runs_per_key(self) -> int:
        """The per-key execution cap, never above the slots there are."""
        cap = self.max_active_runs_per_key or max(1, self.max_active_runs // 2)
        return min(cap, self.max_active_runs)

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    def check_exposure(self) -> None:
        """Refuse to serve a non-loopback address with no API keys unless told to."""
        if not self.is_loopback and not self.api_keys and not self.allow_unauthenticated:
            raise SettingsError(
                f"refusing to listen on {self.host!r} without API keys: set THINKRAG_API_KEYS "
                "(comma-separated), bind to 127.0.0.1, or set THINKRAG_ALLOW_UNAUTHENTICATED=1 "
                "if a proxy in front already authenticates"
            )


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file, the environment and explicit overrides
    (None means "not given", so a CLI flag left out never hides the environment)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        if not config.is_file():
            raise SettingsError(f"config file {config} does not exist: pass an existing TOML file")
        values["config"] = config
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """One line per bad setting, named as the environment spells it."""
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "settings"
        parts.append(f"THINKRAG_{name.upper()} (or {name} in the TOML file): {error['msg']}")
    return "invalid settings: " + "; ".join(parts)


def inherited_environment() -> dict[str, str]:
    """A copy of this process's environment, the base of a child process's environment.

    vLLM and the tools it spawns need everything the operator set (PATH, HOME, proxies,
    VLLM_*/CUDA_* variables), so the launcher passes the whole copy plus the profile's
    own variables; reading it here keeps this module the only reader of os.environ."""
    return dict(os.environ)
