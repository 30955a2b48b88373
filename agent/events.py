"""The typed event stream of a research run.

One vocabulary for the CLI, the HTTP service and the store of streamed events. Events are
pydantic models with a `type` discriminator so they serialise to JSON (SSE, SQLite) and
parse back without loss.
"""

from __future__ import annotations

from typing import Annotated, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from agent.errors import RunErrorKind
from agent.llm.types import Usage
from retrieval.types import Passage


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    run_id: str
    step: int = 0


StopReason = Literal[
    "max_steps",
    "max_tool_calls",
    "max_total_tokens",
    "deadline",
    "thinking_budget",
    "repeated_searches",
    "model_gave_up",
]


def reason_text(reason: StopReason) -> str:
    """Why a run answered early, in words for users and for the finalize prompt.

    A `match` with `assert_never`, so a reason added to `StopReason` without a text
    fails type-checking.
    """
    match reason:
        case "max_steps":
            return "the step budget was used up"
        case "max_tool_calls":
            return "the tool-call budget was used up"
        case "max_total_tokens":
            return "the token budget was used up"
        case "deadline":
            return "the time limit was reached"
        case "thinking_budget":
            return "the model kept thinking past its per-step budget"
        case "repeated_searches":
            return "the searches kept repeating without finding anything new"
        case "model_gave_up":
            return "the model stopped producing actions"
        case _:
            assert_never(reason)


class Source(BaseModel):
    """A passage the run has seen, under its citation number stable for the thread.

    The one cited-source type: the graph state keeps these, citation and final events
    carry them, and the HTTP APIs send them as they are.
    """

    model_config = ConfigDict(frozen=True)
    number: int
    title: str
    source: str
    passage_id: int
    doc_id: str
    start: int
    end: int
    text: str  # the passage text (in a final answer's sources list: the cited span)

    @classmethod
    def cite(cls, number: int, passage: Passage | Source) -> Source:
        return cls(
            number=number, title=passage.title, source=passage.source,
            passage_id=passage.passage_id, doc_id=passage.doc_id, start=passage.start,
            end=passage.end, text=passage.text,
        )  # fmt: skip


class HitInfo(BaseModel):
    """A tool result's passage as the event stream shows it: a source, scored, cut short."""

    model_config = ConfigDict(frozen=True)
    number: int  # citation number, stable for the run
    passage_id: int
    doc_id: str
    title: str
    source: str
    score: float
    snippet: str

    @classmethod
    def of(cls, source: Source, score: float) -> HitInfo:
        return cls(
            number=source.number, passage_id=source.passage_id, doc_id=source.doc_id,
            title=source.title, source=source.source, score=score, snippet=source.text[:240],
        )  # fmt: skip


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
    finalized_reason: StopReason | None = None  # set when a budget ran out or the model gave up
    removed_citations: list[int] = Field(default_factory=list)
    usage: Usage
    steps: int
    tool_calls: int
    seconds: float


class RunError(_Event):
    type: Literal["error"] = "error"
    kind: RunErrorKind  # stable and machine-readable; see agent.errors
    message: str
    resumable: bool = False


class GraphChunk(_Event):
    """One chunk of LangGraph's own stream (`values`, `updates`, `messages`, `debug`) as
    JSON, for clients of the LangGraph API: they see what a LangGraph server would send
    for this graph. Other clients skip these."""

    type: Literal["graph"] = "graph"
    mode: str
    data: JsonValue


Event = Annotated[
    RunStarted
    | ReasoningDelta
    | ToolCallEvent
    | ToolResultEvent
    | AnswerDelta
    | CitationEvent
    | RunFinished
    | RunError
    | GraphChunk,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes) -> Event:
    return EVENT_ADAPTER.validate_json(data)
