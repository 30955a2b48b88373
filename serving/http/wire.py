"""Wire models of the three API families: OpenAI-compatible, LangGraph-compatible, native.

Unknown-field policy (deliberate, like vLLM's): requests of the *compatibility* APIs
ignore fields they do not know, because real clients send many optional ones (`user`,
`webhook`, `feedback_keys`...) that do not change our answer; our *native* requests
forbid unknown fields, so a typo fails loudly with a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from agent.config import RunOptions
from agent.events import Source
from agent.llm.types import Usage
from retrieval.types import Hit
from serving.http.errors import ValidationFailedError
from serving.http.textcheck import ID_MAX_LENGTH, MAX_INT64, check_texts, id_problem

JsonObject = dict[str, JsonValue]


def valid_thread_id(value: str) -> str:
    if problem := id_problem(value):
        raise PydanticCustomError("invalid_id", "the thread id {problem}", {"problem": problem})
    return value


# One thread-id rule for bodies and paths alike (D25): 1-128 characters, no controls.
ThreadId = Annotated[
    str, Field(min_length=1, max_length=ID_MAX_LENGTH), AfterValidator(valid_thread_id)
]
Offset = Annotated[int, Field(ge=0, le=MAX_INT64)]
# A compatibility-API field we cannot honour: accepted so it can be refused by name when
# set (`serving.http.refusals`); left out of the OpenAPI schema, which lists what works
# (an open `Any` schema also sends schema-driven fuzzers into unbounded recursion).
Unhonoured = SkipJsonSchema[Any]


class WireModel(BaseModel):
    """Base of every wire model: native requests forbid unknown fields; every string
    (nested ones too) must be storable text (`serving.http.textcheck`)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        return check_texts(data)


class CompatModel(WireModel):
    """Compatibility-API requests: unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")


class RunBudget(RunOptions):
    """Per-run budget overrides (the agent's `RunOptions` as it is); each is clamped to
    the server's maxima."""

    def to_options(self) -> RunOptions | None:
        return self if self.overrides() else None

    def lowered(self, **caps: int | None) -> RunOptions | None:
        """These overrides with each budget in `caps` lowered to it (None: no cap)."""
        overrides = self.overrides()
        for name, cap in caps.items():
            if cap is not None:
                overrides[name] = min(cap, overrides.get(name, cap))
        return RunBudget.model_validate(overrides).to_options()


# Research steps a run may take per OpenAI reasoning effort; medium and above keep the
# server's budget.
EFFORT_STEPS: dict[str, int] = {"none": 1, "minimal": 1, "low": 3}
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


# -- OpenAI-compatible -------------------------------------------------------------------
class ContentPart(CompatModel):
    type: str = "text"
    text: str = ""


class ChatMessageIn(CompatModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(CompatModel):
    include_usage: bool = False


class ChatCompletionRequest(CompatModel):
    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    # Accepted only so they can be refused by name (`serving.http.refusals`): the agent
    # cannot honour them, and ignoring them would be a silent wrong answer.
    tools: Unhonoured = None
    tool_choice: Unhonoured = None
    functions: Unhonoured = None
    function_call: Unhonoured = None
    # A JSON answer format (`serving.http.answer_format`); checked there.
    response_format: JsonObject | None = None
    stop: Unhonoured = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: Unhonoured = None
    audio: Unhonoured = None
    modalities: Unhonoured = None
    prediction: Unhonoured = None
    web_search_options: Unhonoured = None
    reasoning_effort: Effort | None = None  # a low effort lowers the step budget
    # thinkrag extension (send with the OpenAI SDK's `extra_body={"thinkrag": {...}}`).
    thinkrag: RunBudget | None = None

    def budget(self) -> RunOptions | None:
        steps = EFFORT_STEPS.get(self.reasoning_effort or "")
        return (self.thinkrag or RunBudget.model_validate({})).lowered(max_steps=steps)

    def turns(self) -> list[tuple[str, str]]:
        turns: list[tuple[str, str]] = [(m.role, m.text) for m in self.messages]
        if turns[-1][0] != "user" or not turns[-1][1].strip():
            raise ValidationFailedError(
                "the last message must be a non-empty `user` message: it is the question",
                param="messages",
            )
        return turns


class UsageOut(WireModel):
    """OpenAI's usage shape (a total, reasoning tokens as a detail) of the agent's `Usage`."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    completion_tokens_details: JsonObject | None = None

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            completion_tokens_details={"reasoning_tokens": usage.reasoning_tokens},
        )


SourceOut = Source  # a cited source goes out as the agent keeps it


class ChatMessageOut(WireModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning: str | None = None
    sources: list[SourceOut] = Field(default_factory=list)


class ChatChoice(WireModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: str


class ChatCompletion(WireModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageOut


class ChunkDelta(WireModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning: str | None = None


class ChunkChoice(WireModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    sources: list[SourceOut] | None = None


class ChatCompletionChunk(WireModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageOut | None = None


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "thinkrag"


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- LangGraph-compatible ----------------------------------------------------------------
class ThreadCreate(CompatModel):
    thread_id: ThreadId | None = None
    metadata: JsonObject = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


FilterValue = str | int | float | bool | None


class ThreadSearch(CompatModel):
    limit: int = Field(10, ge=1, le=1000)
    offset: Offset = 0
    # Threads whose metadata / values hold these top-level pairs: scalars only, a flat
    # schema (the pairs are only compared, never stored).
    metadata: dict[str, FilterValue] | None = None
    values: dict[str, FilterValue] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    ids: list[str] | None = None
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: Unhonoured = None
    extract: Unhonoured = None


class HistoryRequest(CompatModel):
    limit: int = Field(10, ge=1, le=1000)
    before: JsonObject | str | None = None  # a checkpoint object (or its id): older ones only


class ThreadPatch(CompatModel):
    """`PATCH /threads/{id}`: metadata merged into the thread's."""

    metadata: JsonObject = Field(default_factory=dict)


class CheckpointRequest(CompatModel):
    """`POST /threads/{id}/state/checkpoint`: the state at a checkpoint object."""

    checkpoint: JsonObject


class StateUpdate(CompatModel):
    """`POST /threads/{id}/state`: write values as if a node had returned them."""

    values: JsonObject | list[JsonValue] | None = None
    as_node: str | None = None
    checkpoint: JsonObject | None = None
    checkpoint_id: str | None = None


class AssistantSearch(CompatModel):
    limit: int = Field(10, ge=1, le=1000)
    offset: Offset = 0
    graph_id: str | None = None


class RunCreate(CompatModel):
    assistant_id: str
    input: JsonObject | None = None
    stream_mode: str | list[str] = "values"
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject = Field(default_factory=dict)
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "reject"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    # Accepted only so they can be refused by name (`serving.http.refusals`).
    interrupt_before: Unhonoured = None
    interrupt_after: Unhonoured = None
    command: Unhonoured = None
    checkpoint: Unhonoured = None
    checkpoint_id: str | None = None
    after_seconds: float | None = None
    webhook: str | None = None

    def question(self) -> str:
        data = self.input or {}
        if isinstance(data.get("question"), str) and str(data["question"]).strip():
            return str(data["question"])
        messages = data.get("messages")
        if isinstance(messages, list):
            for msg in reversed(messages):
                if isinstance(msg, dict) and msg.get("role", msg.get("type")) in ("user", "human"):
                    content = msg.get("content")
                    if isinstance(content, list):
                        content = "".join(
                            str(p.get("text", "")) for p in content if isinstance(p, dict)
                        )
                    if isinstance(content, str) and content.strip():
                        return content
        raise ValidationFailedError(
            "input needs a question: send {'messages': [{'role': 'user', 'content': '...'}]} "
            "or {'question': '...'}",
            param="input",
        )

    def budget(self) -> RunBudget:
        """Budget overrides from `context` or `config.configurable` (LangGraph's two places)."""
        source: JsonValue = self.context
        if source is None and self.config is not None:
            source = self.config.get("configurable")
        where = "context" if self.context is not None else "config.configurable"
        if source is None:
            return RunBudget.model_validate({})
        if not isinstance(source, dict):
            raise ValidationFailedError(f"`{where}` must be an object", param=where)
        known = {k: v for k, v in source.items() if k in RunBudget.model_fields}
        try:
            return RunBudget.model_validate(known)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join([where, *(str(p) for p in err["loc"])])
            raise ValidationFailedError(
                f"field `{field}`: {err['msg']}; fix that budget value and resend", param=field
            ) from None


class Assistant(WireModel):
    assistant_id: str
    graph_id: str
    config: JsonObject = Field(default_factory=dict)
    context: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    version: int = 1
    name: str
    description: str | None = None
    created_at: str
    updated_at: str


class ThreadOut(WireModel):
    thread_id: str
    created_at: str
    updated_at: str
    metadata: JsonObject
    status: Literal["idle", "busy", "interrupted", "error"]
    values: JsonObject
    interrupts: JsonObject = Field(default_factory=dict)
    # As the LangGraph server sends them: the thread's run config, its last error, and when
    # its values last changed.
    config: JsonObject = Field(default_factory=dict)
    error: str | None = None
    state_updated_at: str | None = None


class CheckpointOut(WireModel):
    thread_id: str
    checkpoint_ns: str = ""
    checkpoint_id: str | None
    checkpoint_map: JsonObject | None = None


class ThreadStateOut(WireModel):
    values: JsonObject
    next: list[str] = Field(default_factory=list)
    checkpoint: CheckpointOut
    metadata: JsonObject = Field(default_factory=dict)
    created_at: str | None
    parent_checkpoint: CheckpointOut | None = None
    tasks: list[JsonObject] = Field(default_factory=list)
    interrupts: list[JsonObject] = Field(default_factory=list)
    checkpoint_id: str | None = None  # the same ids flat, as the LangGraph server adds them
    parent_checkpoint_id: str | None = None


class RunOut(WireModel):
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: str
    updated_at: str
    status: str
    metadata: JsonObject
    multitask_strategy: str = "reject"
    kwargs: JsonObject = Field(default_factory=dict)
    # thinkrag extras: how far recovery got and whether POST /v1/runs/{id}/resume applies.
    attempt: int = 0
    resumable: bool = False
    error: str | None = None


# -- Native ------------------------------------------------------------------------------
class SearchRequest(WireModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=100)
    doc_ids: list[str] = Field(default_factory=list)
    source_prefix: str | None = None


HitOut = Hit  # a search hit goes out as retrieval returns it


class SearchResponse(WireModel):
    query: str
    hits: list[HitOut]
    seconds: float


class Health(WireModel):
    status: Literal["ok", "unavailable"]
    index: str | None = None  # None: details need an API key (D15)
    model: str | None = None
    checks: dict[str, str] = Field(default_factory=dict)


class ResearchRequest(WireModel):
    """Native `POST /v1/runs`: start a research run in the background."""

    question: str = Field(min_length=1, max_length=20_000)
    thread_id: ThreadId | None = None
    budget: RunBudget | None = None

    @model_validator(mode="after")
    def _question_not_blank(self) -> ResearchRequest:
        if not self.question.strip():
            raise PydanticCustomError(
                "invalid_text",
                "the question {problem}; send the question text",
                {"field": "question", "problem": "is blank"},
            )
        return self
