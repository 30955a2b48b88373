"""The graph state: small typed records that checkpoint to SQLite and render to messages.

Each record is a pydantic model so the checkpointer can round-trip it (its types are
allow-listed for LangGraph's msgpack serializer in `STATE_TYPES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Annotated, Any, Literal, get_type_hints

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from typing_extensions import TypedDict

from agent.config import Budgets
from agent.events import Source, StopReason
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


ToolFailureKind = Literal["unknown_tool", "bad_arguments", "tool_failed", "budget"]


class ToolFailure(_Record):
    """Why a tool call produced nothing: `kind` for code, `message` for the model."""

    kind: ToolFailureKind
    message: str

    def prompt_text(self) -> str:
        return f"Error ({self.kind}): {self.message}"


class ToolResultRecord(_Record):
    call_id: str
    name: str
    arguments: str
    observation: str  # what the model reads (already truncated to the budget)
    numbers: tuple[int, ...] = ()  # citation numbers of the passages it returned
    scores: tuple[float, ...] = ()
    cached: bool = False
    failure: ToolFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @classmethod
    def failed(cls, call: ToolCallRecord, kind: ToolFailureKind, message: str) -> ToolResultRecord:
        failure = ToolFailure(kind=kind, message=message)
        return cls(
            call_id=call.id, name=call.name, arguments=call.arguments,
            observation=failure.prompt_text(), failure=failure,
        )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _from_old_checkpoint(cls, data: Any) -> Any:
        """Checkpoints written before `failure` kept `ok` and `error_kind` instead."""
        if isinstance(data, dict) and "ok" in data:
            data = dict(data)
            kind = data.pop("error_kind", None)
            if not data.pop("ok") and "failure" not in data:
                message = str(data.get("observation", "")).partition("): ")[2]
                data["failure"] = {"kind": kind or "tool_failed", "message": message}
        return data


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
    usage: Usage = Field(default_factory=Usage)
    seconds: float = 0.0
    note: str | None = None  # "thinking_overrun", "empty", "invalid_action: ..."


class RunResult(_Record):
    run_id: str
    answer: str
    sources: tuple[Source, ...]
    finalized_reason: StopReason | None
    removed_citations: tuple[int, ...]
    usage: Usage
    steps: int
    tool_calls: int
    seconds: float


# Old checkpoints name these records by their former names; msgpack finds them here.
UsageRecord = Usage
SourceRecord = Source


StateUpdate = dict[str, Any]
"""What a node returns: the fields it changes, by name (LangGraph writes only those)."""

_THREAD_SCOPED = frozenset({"messages", "transcript", "prompt_text", "sources", "exchanges"})
_RUN_INPUT = frozenset({"run_id", "question", "budgets", "started_at", "deadline_at"})

Messages = Annotated[list[AnyMessage], add_messages]
"""The public conversation in LangChain's message types (what chat clients show): each
question, the model's tool calls with their results, and each final answer."""


class BudgetsInput(TypedDict, total=False):
    """Budget overrides as plain JSON (`Budgets` field names); each is clamped to the
    server's maximum by the start node."""

    max_steps: int
    max_tool_calls: int
    max_total_tokens: int
    thinking_tokens_per_step: int
    deadline_seconds: float
    top_k: int


class ResearchInput(TypedDict, total=False):
    """What a run takes as JSON: a `question`, or `messages` whose last human message is
    the question (chat clients send this), and optional `budgets`."""

    question: str
    messages: Messages
    budgets: BudgetsInput


@dataclass(frozen=True, slots=True)
class AgentState:
    """LangGraph state, one field per channel (so checkpoints hold plain records).

    Thread-scoped (kept across questions): messages, transcript, prompt_text, sources,
    exchanges. Run input: question and budgets (`ResearchInput`; budgets may arrive as a
    plain dict); the start node reads them and fills current_question, run_id,
    started_at and deadline_at.
    Everything else is run-scoped and reset by the start node (`run_reset`).
    """

    # thread-scoped
    messages: Messages = field(default_factory=list)
    transcript: list[ChatTurn] = field(default_factory=list)
    prompt_text: str = ""  # the tags protocol's growing raw prompt
    sources: dict[int, Source] = field(default_factory=dict)
    exchanges: list[ChatTurn] = field(default_factory=list)  # questions and final answers
    # run input: `question` is an input slot (emptied by the start node once read)
    run_id: str = ""
    question: str = ""
    current_question: str = ""  # the question this run answers
    budgets: Budgets = field(default_factory=Budgets)
    started_at: float | None = None  # time.time() when the run started
    deadline_at: float | None = None  # absolute deadline, fixed at start and kept on resume
    # run-scoped
    step: int = 0
    tool_calls_used: int = 0
    usage: Usage = field(default_factory=Usage)
    steps: list[StepRecord] = field(default_factory=list)
    pending: list[ToolCallRecord] = field(default_factory=list)
    pending_results: list[ToolResultRecord] = field(default_factory=list)  # for condense
    draft: AnswerDraft | None = None
    streamed_answer: str = ""  # answer text already sent live as AnswerDelta events
    query_cache: dict[str, list[int]] = field(default_factory=dict)
    stop_reason: StopReason | None = None
    overruns: int = 0  # consecutive steps that produced no action
    repeats: int = 0  # consecutive steps that only repeated earlier searches
    result: RunResult | None = None

    def __post_init__(self) -> None:
        """Rebuild records that a checkpoint loader handed back as plain data.

        A strict msgpack loader that was not told our record types returns each one as its
        field dict (LangGraph servers lose the graph's derived allow-list when they copy
        the compiled graph); validating the field restores the record. Partial budgets are
        run input, which the start node reads and clamps.
        """
        for name, adapter in _record_adapters().items():
            value = getattr(self, name)
            full = isinstance(value, dict) and value.keys() >= _FULL_BUDGETS
            if name == "budgets" and not full:
                continue
            if _holds_plain_data(value):
                object.__setattr__(self, name, adapter.validate_python(value))

    def merged(self, update: StateUpdate) -> AgentState:
        """This state with `update` applied, as the next node will see it."""
        return replace(self, **update)

    @classmethod
    def run_reset(cls) -> StateUpdate:
        """Every run-scoped field at its default: a new run starts from zero."""
        blank = cls()
        skip = _THREAD_SCOPED | _RUN_INPUT
        return {f.name: getattr(blank, f.name) for f in fields(cls) if f.name not in skip}


_RECORD_FIELDS = (
    "transcript", "sources", "exchanges", "budgets", "usage", "steps", "pending",
    "pending_results", "draft", "result",
)  # fmt: skip
_FULL_BUDGETS = frozenset(Budgets.model_fields)


@cache
def _record_adapters() -> dict[str, TypeAdapter[Any]]:
    hints = get_type_hints(AgentState)
    return {name: TypeAdapter(hints[name]) for name in _RECORD_FIELDS}


def _holds_plain_data(value: object) -> bool:
    """True when a record field holds a dict where a record belongs."""
    if isinstance(value, dict):  # a record as a dict, or a mapping of records as dicts
        return bool(value) and not all(isinstance(v, BaseModel) for v in value.values())
    if isinstance(value, list | tuple):
        return any(isinstance(v, dict) for v in value)
    return False


STATE_TYPES: tuple[type, ...] = (
    ToolCallRecord,
    ChatTurn,
    Usage,
    Source,
    ToolFailure,
    ToolResultRecord,
    AnswerDraft,
    StepRecord,
    RunResult,
    Budgets,
)
