"""The typed event stream of a research run.

One vocabulary for the CLI, the HTTP service and the store of streamed events. Events are
pydantic models with a `type` discriminator so they serialise to JSON (SSE, SQLite) and
parse back without loss.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    run_id: str
    step: int = 0


class UsageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0


class HitInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    number: int  # citation number, stable for the run
    passage_id: int
    doc_id: str
    title: str
    source: str
    score: float
    snippet: str


class Source(BaseModel):
    """One entry of the final answer's sources list."""

    model_config = ConfigDict(frozen=True)
    number: int
    title: str
    source: str
    passage_id: int
    doc_id: str
    start: int
    end: int
    text: str  # the cited span


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    thread_id: str
    question: str


class ReasoningDelta(_Event):
    type: Literal["reasoning_delta"] = "reasoning_delta"
    text: str


class ToolCallEvent(_Event):
    type: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: str


class ToolResultEvent(_Event):
    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    ok: bool
    observation: str
    hits: list[HitInfo] = Field(default_factory=list)
    cached: bool = False


class AnswerDelta(_Event):
    type: Literal["answer_delta"] = "answer_delta"
    text: str


class CitationEvent(_Event):
    type: Literal["citation"] = "citation"
    source: Source


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    answer: str
    sources: list[Source]
    finalized_reason: str | None = None  # set when a budget ran out or the model gave up
    removed_citations: list[int] = Field(default_factory=list)
    usage: UsageInfo
    steps: int
    tool_calls: int
    seconds: float


class RunError(_Event):
    type: Literal["error"] = "error"
    kind: str  # stable machine-readable kind, e.g. "model_unreachable"
    message: str
    resumable: bool = False


Event = Annotated[
    RunStarted
    | ReasoningDelta
    | ToolCallEvent
    | ToolResultEvent
    | AnswerDelta
    | CitationEvent
    | RunFinished
    | RunError,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes) -> Event:
    return EVENT_ADAPTER.validate_json(data)
