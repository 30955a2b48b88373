"""Wire models of the OpenAI Responses API (`POST /v1/responses`), as the openai SDK types them.

Requests follow the compatibility policy of `serving.http.wire` (unknown fields ignored,
fields we cannot honour accepted so `serving.http.refusals` can refuse them by name).
Responses are built to the SDK's `Response` shape: reasoning items carry the agent's
thinking, each `search` is a `file_search_call` with its results, and the answer is an
`output_text` whose citations are `file_citation` annotations (the corpus is files, the
same shape OpenAI's own file search produces).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from agent.config import RunOptions
from serving.http.errors import ValidationFailedError
from serving.http.wire import EFFORT_STEPS, CompatModel, Effort, RunBudget, Unhonoured, WireModel

JsonObject = dict[str, JsonValue]


class InputPart(CompatModel):
    type: str = "input_text"
    text: str = ""


class InputItem(CompatModel):
    """An input item; only messages (the easy or the typed form) are read."""

    type: str = "message"
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[InputPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type in ("input_text", "output_text"))
        return self.content or ""


class ReasoningParam(CompatModel):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None

    @property
    def wants_summary(self) -> bool:
        return (self.summary or self.generate_summary) is not None


class TextFormat(CompatModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: JsonObject | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextConfig(CompatModel):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponseCreate(CompatModel):
    model: str
    input: str | list[InputItem]
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=200)
    stream: bool = False
    store: bool = True
    metadata: dict[str, str] | None = None
    text: TextConfig | None = None
    reasoning: ReasoningParam | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    truncation: Literal["auto", "disabled"] | None = None
    max_tool_calls: int | None = Field(default=None, ge=0)  # lowers the run's tool budget
    # Accepted only so they can be refused by name (`serving.http.refusals`).
    tools: Unhonoured = None
    tool_choice: Unhonoured = None
    background: bool | None = None
    include: Unhonoured = None
    max_output_tokens: int | None = None
    top_logprobs: int | None = None
    conversation: Unhonoured = None
    prompt: Unhonoured = None
    # thinkrag extension (the SDK's `extra_body={"thinkrag": {...}}`).
    thinkrag: RunBudget | None = None

    def items(self) -> list[InputItem]:
        if isinstance(self.input, str):
            return [InputItem(role="user", content=self.input)]
        return self.input

    def turns(self) -> list[tuple[str, str]]:
        """(role, text) per input message, instructions first; the last is the question."""
        turns = [("developer", self.instructions)] if self.instructions else []
        turns += [(item.role or "user", item.text) for item in self.items()]
        if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
            raise ValidationFailedError(
                "the last input item must be a non-empty `user` message: it is the question",
                param="input",
            )
        return turns

    def budget(self) -> RunOptions | None:
        """The run's budget: `thinkrag` overrides, lowered by `max_tool_calls` and by a
        low `reasoning.effort` (fewer research steps)."""
        steps = EFFORT_STEPS.get(self.reasoning.effort or "") if self.reasoning else None
        return (self.thinkrag or RunBudget.model_validate({})).lowered(
            max_steps=steps, max_tool_calls=self.max_tool_calls
        )


class StoredRequest(WireModel):
    """What a response row keeps of its request: enough to rebuild the response object
    and to replay the conversation when a later response forks from it."""

    model: str
    turns: list[tuple[str, str]]
    instructions: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    reasoning: ReasoningParam | None = None
    format: TextFormat | None = None
    tool_choice: Literal["auto", "none"] = "auto"
    truncation: Literal["auto", "disabled"] | None = None

    @classmethod
    def of(cls, body: ResponseCreate, turns: list[tuple[str, str]]) -> StoredRequest:
        return cls(
            model=body.model, turns=turns, instructions=body.instructions,
            metadata=dict(body.metadata or {}), temperature=body.temperature, top_p=body.top_p,
            reasoning=body.reasoning, format=body.text.format if body.text else None,
            tool_choice="none" if body.tool_choice == "none" else "auto",
            truncation=body.truncation,
        )  # fmt: skip


# -- the response object ---------------------------------------------------------------
class ReasoningText(WireModel):
    type: Literal["reasoning_text", "summary_text"]
    text: str = ""


class ReasoningItem(WireModel):
    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[ReasoningText] = Field(default_factory=list)
    content: list[ReasoningText] = Field(default_factory=list)
    status: Literal["in_progress", "completed", "incomplete"] = "in_progress"


class FileSearchResult(WireModel):
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, str | float | bool] = Field(default_factory=dict)


class FileSearchCall(WireModel):
    type: Literal["file_search_call"] = "file_search_call"
    id: str
    queries: list[str]
    status: Literal["in_progress", "searching", "completed", "incomplete", "failed"]
    results: list[FileSearchResult] | None = None


class FileCitation(WireModel):
    type: Literal["file_citation"] = "file_citation"
    file_id: str  # the cited document's id
    filename: str  # its source file
    index: int  # where in the text the citation marker ends


class OutputText(WireModel):
    type: Literal["output_text"] = "output_text"
    text: str = ""
    annotations: list[FileCitation] = Field(default_factory=list)
    logprobs: list[JsonObject] = Field(default_factory=list)


class MessageItem(WireModel):
    type: Literal["message"] = "message"
    id: str
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"] = "in_progress"
    content: list[OutputText] = Field(default_factory=list)


OutputItem = ReasoningItem | FileSearchCall | MessageItem


class ResponseUsage(WireModel):
    input_tokens: int = 0
    input_tokens_details: dict[str, int] = Field(default_factory=lambda: {"cached_tokens": 0})
    output_tokens: int = 0
    output_tokens_details: dict[str, int] = Field(default_factory=lambda: {"reasoning_tokens": 0})
    total_tokens: int = 0


class ResponseErrorOut(WireModel):
    code: str
    message: str


ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]


class ResponseObject(WireModel):
    id: str
    object: Literal["response"] = "response"
    created_at: float
    completed_at: float | None = None
    status: ResponseStatus = "in_progress"
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    instructions: str | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    error: ResponseErrorOut | None = None
    incomplete_details: JsonObject | None = None
    parallel_tool_calls: bool = False
    tool_choice: Literal["auto", "none"] = "auto"
    tools: list[JsonObject] = Field(default_factory=list)
    temperature: float | None = None
    top_p: float | None = None
    reasoning: JsonObject | None = None
    text: JsonObject = Field(default_factory=lambda: {"format": {"type": "text"}})  # type: ignore[arg-type]
    truncation: Literal["auto", "disabled"] = "disabled"
    store: bool = True
    background: bool = False
    usage: ResponseUsage | None = None
    # thinkrag extras: the thread this conversation lives on (LangGraph and native APIs).
    thread_id: str | None = None


class DeletedResponse(WireModel):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True


class InputText(WireModel):
    type: Literal["input_text"] = "input_text"
    text: str


class InputMessageOut(WireModel):
    type: Literal["message"] = "message"
    id: str
    role: Literal["user", "assistant", "system", "developer"]
    status: Literal["completed"] = "completed"
    content: list[InputText]


class InputItemList(WireModel):
    object: Literal["list"] = "list"
    data: list[InputMessageOut]
    first_id: str | None
    last_id: str | None
    has_more: bool
