"""Shared helpers for the agent tests: a tiny two-hop corpus and event collection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from agent.config import AgentConfig
from agent.events import Event, RunError, RunFinished
from agent.llm.client import OpenAIClient
from agent.runner import ResearchAgent
from agent.tools.base import Tool
from retrieval.search.memory import InMemoryRetriever
from retrieval.types import Passage

DOCS: list[tuple[str, str, list[str]]] = [
    (
        "freedonia",
        "Freedonia",
        [
            "Freedonia is a small republic in the northern hills. Its capital is Sylvania City.",
            "Freedonia exports cheese, wool and clockwork toys to its neighbours.",
        ],
    ),
    (
        "sylvania-city",
        "Sylvania City",
        [
            "Sylvania City was founded in 1712 by river traders.",
            "Sylvania City lies on the river Brill, which floods every spring.",
        ],
    ),
    (
        "marmots",
        "Alpine marmots",
        ["Marmots are large ground squirrels that hibernate for half the year."],
    ),
]


def corpus_passages() -> list[Passage]:
    out: list[Passage] = []
    pid = 100
    for doc_id, title, texts in DOCS:
        offset = 0
        for ordinal, text in enumerate(texts):
            out.append(
                Passage(
                    passage_id=pid,
                    doc_id=doc_id,
                    ordinal=ordinal,
                    title=title,
                    text=text,
                    source=f"{doc_id}.md",
                    start=offset,
                    end=offset + len(text),
                )
            )
            offset += len(text) + 1
            pid += 1
    return out


def retriever() -> InMemoryRetriever:
    return InMemoryRetriever(corpus_passages())


def make_agent(
    base_url: str,
    config: AgentConfig | None = None,
    checkpoint: Path | None = None,
    tools: Sequence[Tool] | None = None,
) -> ResearchAgent:
    model = OpenAIClient(base_url, "scripted")
    return ResearchAgent(
        model,
        retriever(),
        config or AgentConfig(top_k=2),
        checkpoint_path=checkpoint,
        tools=tools,
    )


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [e async for e in events]


def finished(events: Sequence[Event]) -> RunFinished:
    last = events[-1]
    if isinstance(last, RunError):
        raise AssertionError(f"run failed: {last.kind}: {last.message}")
    assert isinstance(last, RunFinished), f"last event is {type(last).__name__}"
    return last


def call(name: str, **args: object) -> tuple[str, str]:
    return (name, json.dumps(args))
