"""The methods compared in one evaluation: closed-book, single-retrieval RAG, the agent.

Each method turns one question into a `MethodOutput`; the harness scores it. All use the
same model endpoint and (where they retrieve) the same index, so rows are comparable.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from agent.errors import ModelError, ModelTimeoutError
from agent.llm.types import ChatRequest, Message, ReasoningModel, Usage
from retrieval.types import Hit, Retriever

if TYPE_CHECKING:
    from agent.config import AgentConfig

SHORT_ANSWER_SYSTEM = (
    "You answer trivia-style questions. Reply with the answer only: a short phrase of at "
    "most a few words (a name, a date, a number, yes or no), with no explanation and no "
    "full sentence."
)
RAG_USER = (
    "Use the passages below to answer the question.\n\n{passages}\n\nQuestion: {question}\n"
    "Answer with a few words only."
)
CLOSED_BOOK_USER = "Question: {question}\nAnswer with a few words only."

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
# Citation marks, "[n]" copied from the instructions, and source ids copied from passage
# headers ("Title (multihop:ab12...)") are not part of an answer.
_CITATION = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*|n)\]|\s*\([a-z][\w+.-]*:[^\s()]+\)")
_ANSWER_PREFIX = re.compile(
    r"^(?:the\s+)?(?:final\s+|short\s+)?answer(?:\s+is\s*[:\-]?|\s*[:\-])\s*",
    re.IGNORECASE,
)


@dataclass(slots=True)
class MethodOutput:
    prediction: str
    answer: str = ""  # the full reply the prediction was cut from
    retrieved: list[str] = field(default_factory=list)  # doc ids, first-seen order
    cited: list[str] = field(default_factory=list)
    steps: int = 0
    searches: int = 0
    usage: Usage = field(default_factory=Usage)
    failure: str | None = None
    error: str | None = None
    finalized_reason: str | None = None


class Method(Protocol):
    name: str

    async def answer(self, question: str) -> MethodOutput: ...


def short_answer(text: str) -> str:
    """The scoreable span of a model reply: no reasoning, no citation marks, first line.

    A lead-in line ("The answer to ... is:") is skipped when a line follows it.
    """
    text = _THINK.sub("", text).strip()
    text = _CITATION.sub("", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    while len(lines) > 1 and lines[0].endswith(":"):
        lines.pop(0)
    first = lines[0] if lines else ""
    return _ANSWER_PREFIX.sub("", first).strip().rstrip(".").strip()


def failure_kind(exc: BaseException) -> str:
    """A stable machine-readable kind for a failure, for the report's failure table."""
    if isinstance(exc, ModelTimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ModelError):
        return "model_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower().removeprefix(
            "model_"
        ).removesuffix("_error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def format_passages(hits: Sequence[Hit], *, max_chars: int = 700) -> str:
    return "\n\n".join(
        f"[{n}] {hit.title}\n{hit.text[:max_chars]}" for n, hit in enumerate(hits, start=1)
    )


@dataclass(slots=True)
class ClosedBook:
    """The model alone: what it knows without retrieval."""

    model: ReasoningModel
    max_tokens: int = 64  # short answers only; also keeps CPU runs affordable
    temperature: float | None = 0.0
    name: str = "closed-book"

    async def answer(self, question: str) -> MethodOutput:
        request = ChatRequest(
            messages=(
                Message("system", SHORT_ANSWER_SYSTEM),
                Message("user", CLOSED_BOOK_USER.format(question=question)),
            ),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        result = await self.model.chat(request)
        return MethodOutput(
            prediction=short_answer(result.content),
            answer=result.content,
            steps=1,
            usage=result.usage,
        )


@dataclass(slots=True)
class Rag:
    """One retrieval with the question, the top k passages in one prompt, one answer."""

    model: ReasoningModel
    retriever: Retriever
    k: int = 5
    max_tokens: int = 64  # short answers only; also keeps CPU runs affordable
    temperature: float | None = 0.0
    name: str = "rag"

    async def answer(self, question: str) -> MethodOutput:
        hits = await asyncio.to_thread(self.retriever.search, question, self.k)
        prompt = RAG_USER.format(passages=format_passages(hits), question=question)
        request = ChatRequest(
            messages=(Message("system", SHORT_ANSWER_SYSTEM), Message("user", prompt)),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        result = await self.model.chat(request)
        return MethodOutput(
            prediction=short_answer(result.content),
            answer=result.content,
            retrieved=_unique([h.doc_id for h in hits]),
            steps=1,
            searches=1,
            usage=result.usage,
        )


@dataclass(slots=True)
class AgentMethod:
    """The full research graph; retrieved/cited passages come from its event stream."""

    model: ReasoningModel
    retriever: Retriever
    config: AgentConfig
    name: str = "agent"

    async def answer(self, question: str) -> MethodOutput:
        from agent.events import RunError, RunFinished, ToolResultEvent
        from agent.runner import ResearchAgent

        agent = ResearchAgent(self.model, self.retriever, self.config, checkpoint_path=None)
        retrieved: list[str] = []
        searches = 0
        out = MethodOutput(prediction="")
        run_id = uuid.uuid4().hex
        try:
            async for event in agent.run(question, thread_id=run_id, run_id=run_id):
                if isinstance(event, ToolResultEvent):
                    if event.name == "search":
                        searches += 1
                    retrieved.extend(hit.doc_id for hit in event.hits)
                elif isinstance(event, RunFinished):
                    out.prediction = short_answer(event.answer)
                    out.answer = event.answer
                    out.cited = _unique([s.doc_id for s in event.sources])
                    out.steps = event.steps
                    out.finalized_reason = event.finalized_reason
                    u = event.usage
                    out.usage = Usage(
                        u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens
                    )
                elif isinstance(event, RunError):
                    out.failure = event.kind
                    out.error = event.message
        finally:
            await agent.aclose()
        out.retrieved = _unique(retrieved)
        out.searches = searches
        return out
