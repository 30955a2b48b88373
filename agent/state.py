"""The graph state: small typed records that checkpoint to SQLite and render to messages.

Each record is a pydantic model so the checkpointer can round-trip it (its types are
allow-listed for LangGraph's msgpack serializer in `STATE_TYPES`).
"""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from agent.config import Budgets
from agent.llm.types import Message, ToolCall, Usage


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ToolCallRecord(_Record):
    """A tool the model asked for (arguments kept raw: the tool layer validates them)."""

    id: str
    name: str
    arguments: str

    def to_tool_call(self) -> ToolCall:
        return ToolCall(id=self.id, name=self.name, arguments=self.arguments)


class ChatTurn(_Record):
    """One transcript message in a serialisable form."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCallRecord, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    # Kind of content, so compaction knows what it may shorten.
    kind: Literal["prompt", "question", "action", "observation", "note", "answer"] = "note"

    def to_message(self) -> Message:
        return Message(
            role=self.role,
            content=self.content,
            tool_calls=tuple(c.to_tool_call() for c in self.tool_calls),
            tool_call_id=self.tool_call_id,
            name=self.name,
        )


class UsageRecord(_Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def of(cls, usage: Usage) -> UsageRecord:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cached_tokens=usage.cached_tokens,
        )

    def plus(self, other: UsageRecord) -> UsageRecord:
        return UsageRecord(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class SourceRecord(_Record):
    """A passage the run has seen, under its citation number."""

    number: int
    passage_id: int
    doc_id: str
    title: str
    source: str
    start: int
    end: int
    text: str


class ToolResultRecord(_Record):
    call_id: str
    name: str
    arguments: str
    ok: bool
    observation: str  # what the model reads (already truncated to the budget)
    numbers: tuple[int, ...] = ()  # citation numbers of the passages it returned
    scores: tuple[float, ...] = ()
    cached: bool = False
    error_kind: str | None = None  # "unknown_tool" | "bad_arguments" | "tool_failed" | ...


class AnswerDraft(_Record):
    text: str
    citations: tuple[int, ...] = ()


class StepRecord(_Record):
    """One reason(+act) step, as smolagents-style memory: renders to JSON for inspection."""

    index: int
    reasoning: str = ""
    content: str = ""
    actions: tuple[ToolCallRecord, ...] = ()
    results: tuple[ToolResultRecord, ...] = ()
    answer: AnswerDraft | None = None
    usage: UsageRecord = Field(default_factory=UsageRecord)
    seconds: float = 0.0
    note: str | None = None  # "thinking_overrun", "empty", "invalid_action: ..."


class RunResult(_Record):
    run_id: str
    answer: str
    sources: tuple[SourceRecord, ...]
    finalized_reason: str | None
    removed_citations: tuple[int, ...]
    usage: UsageRecord
    steps: int
    tool_calls: int
    seconds: float


StopReason = Literal[
    "max_steps",
    "max_tool_calls",
    "max_total_tokens",
    "deadline",
    "thinking_budget",
    "model_gave_up",
]


class AgentState(TypedDict, total=False):
    """LangGraph state. Thread-scoped: transcript, prompt_text, sources, exchanges.
    Run-scoped (reset by the start node): everything else."""

    # thread-scoped
    transcript: list[ChatTurn]
    prompt_text: str  # the tags protocol's growing raw prompt
    sources: dict[int, SourceRecord]
    exchanges: list[ChatTurn]  # questions and final answers, for thread_history
    # run-scoped
    run_id: str
    question: str
    budgets: Budgets
    started_at: float
    deadline_at: float  # absolute time.time() deadline, fixed at start and kept on resume
    step: int
    tool_calls_used: int
    usage: UsageRecord
    steps: list[StepRecord]
    pending: list[ToolCallRecord]
    pending_results: list[ToolResultRecord]  # awaiting the condense node
    draft: AnswerDraft | None
    streamed_answer: str  # answer text already sent live as AnswerDelta events
    query_cache: dict[str, list[int]]
    stop_reason: str | None
    overruns: int  # consecutive steps that produced no action
    repeats: int  # consecutive steps that only repeated earlier searches
    result: RunResult | None


STATE_TYPES: tuple[type, ...] = (
    ToolCallRecord,
    ChatTurn,
    UsageRecord,
    SourceRecord,
    ToolResultRecord,
    AnswerDraft,
    StepRecord,
    RunResult,
    Budgets,
)
