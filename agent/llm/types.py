"""The model port: what the agent needs from an OpenAI-protocol server such as vLLM.

The concrete client lives in `agent/llm/client.py`; tests use a scripted server that
speaks the same wire protocol, so everything above this line is exercised for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it; parsed by the tool layer


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    reasoning: str | None = None  # sent back as `reasoning` only when a profile wants it
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class Delta:
    """One streamed piece of a response."""

    kind: Literal["reasoning", "content", "tool_call"]
    text: str = ""
    tool_index: int | None = None  # for tool_call deltas: which call is growing


@dataclass(frozen=True, slots=True)
class ChatResult:
    content: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    model: str = ""
    # True when the client cut a stream whose reasoning ran past `thinking_token_budget`
    # (a safety net for servers that ignore the budget); finish_reason is then "length".
    thinking_budget_exhausted: bool = False


@dataclass(frozen=True, slots=True)
class CompletionResult:
    text: str
    finish_reason: FinishReason
    stop_reason: str | None  # the stop string that ended the text, when one did
    usage: Usage


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything one chat call needs; optional fields are omitted from the wire."""

    messages: Sequence[Message]
    max_tokens: int = 1024
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    tools: Sequence[Mapping[str, Any]] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    response_format: Mapping[str, Any] | None = None
    structured_outputs: Mapping[str, Any] | None = None
    chat_template_kwargs: Mapping[str, Any] | None = None
    thinking_token_budget: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ReasoningModel(Protocol):
    """An OpenAI-protocol model endpoint (vLLM in production)."""

    @property
    def model_name(self) -> str: ...

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Delta | ChatResult]:
        """Yields `Delta`s as they arrive and the assembled `ChatResult` last."""
        ...

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        include_stop_str_in_output: bool = False,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> CompletionResult: ...

    async def aclose(self) -> None: ...
