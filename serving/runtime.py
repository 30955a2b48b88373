"""Build the service's parts from `Settings`: retriever, model client, agent.

Kept apart from `app.py` so the CLI can run the same checks before starting uvicorn
(fail fast on a missing index or an unreachable model) and tests can swap a part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.config import AgentConfig
from agent.llm.types import ReasoningModel
from retrieval.types import Passage, Retriever
from serving.http.research import ResearchEngine
from serving.settings import Settings, SettingsError


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
    if not settings.index_dir.exists():
        raise StartupError(
            f"index directory {settings.index_dir} does not exist; build it with "
            f"`thinkrag index FOLDER --index {settings.index_dir}`"
        )
    from retrieval.errors import RetrievalError
    from retrieval.search.retriever import load_retriever

    try:
        return load_retriever(settings.index_dir, mode=settings.retriever_mode), str(
            settings.index_dir
        )
    except RetrievalError as exc:
        raise StartupError(str(exc)) from exc


def agent_config(settings: Settings) -> AgentConfig:
    """Profile defaults for the agent side, then the server's budget maxima on top."""
    from serving.models.agent_config import agent_config_for

    profile = None
    if settings.profile:
        from serving.models.profiles import get_profile

        try:
            profile = get_profile(settings.profile)
        except Exception as exc:  # UnknownProfileError names the known profiles
            raise SettingsError(str(exc)) from exc
    budgets = ("max_steps", "max_tool_calls", "max_total_tokens", "deadline_seconds", "top_k")
    return agent_config_for(profile, **{name: getattr(settings, name) for name in budgets})


def model_name(settings: Settings) -> str | None:
    if settings.model_name:
        return settings.model_name
    if settings.profile:
        from serving.models.profiles import get_profile

        return getattr(get_profile(settings.profile), "served_model_name", None)
    return None


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


def build_components(settings: Settings) -> Components:
    from agent.llm.client import OpenAIClient
    from agent.runner import ResearchAgent

    retriever, label = build_retriever(settings)
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    model = OpenAIClient(settings.model_url, model_name(settings), api_key=key)
    checkpoints = settings.resolved_checkpoint_path
    checkpoints.parent.mkdir(parents=True, exist_ok=True)
    engine = ResearchAgent(model, retriever, agent_config(settings), checkpoint_path=checkpoints)
    return Components(retriever=retriever, model=model, engine=engine, index_label=label)
