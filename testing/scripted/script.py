"""Script types of the scripted model server: what to answer, what was asked, and the host port.

Split from the server lifecycle so the wire renderer and the app depend on these types and
on `ScriptHost` only, never on the server class that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ReasoningField = Literal["reasoning", "reasoning_content"]


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """One scripted answer. Chat endpoints use reasoning/content/tool_calls; completions `text`.

    Error knobs: `status` answers that HTTP status with an OpenAI error body (and
    `retry_after` seconds as a header); `cut_stream_after_chunks` aborts a stream after that
    many SSE events without a terminating chunk; `first_byte_delay` delays the first byte.
    """

    reasoning: str = ""
    content: str = ""
    tool_calls: tuple[tuple[str, str], ...] = ()  # (function name, raw arguments JSON)
    text: str = ""  # for /v1/completions
    finish_reason: str | None = None  # default: "tool_calls" with calls, else "stop"
    reasoning_field: ReasoningField = "reasoning"
    think_in_content: bool = False  # `<think>reasoning</think>content` in the content
    unclosed_think: bool = False  # `<think>reasoning` with no closing tag (implies in content)
    omit_think_open: bool = False  # `reasoning</think>content` (some R1 distills)
    prompt_tokens: int | None = None  # default: rough count of the request's prompt
    cached_tokens: int | None = None  # reported as prompt_tokens_details.cached_tokens
    status: int | None = None
    error_message: str = "scripted error"
    retry_after: float | None = None
    cut_stream_after_chunks: int | None = None
    first_byte_delay: float = 0.0
    latency: float | None = None  # per-chunk delay; overrides the server's

    def visible_content(self) -> str:
        """The `content` as the wire carries it, with think tags when the knobs ask for them."""
        if self.unclosed_think:
            return f"<think>{self.reasoning}{self.content}"
        if self.omit_think_open:
            return f"{self.reasoning}</think>{self.content}"
        if self.think_in_content:
            return f"<think>{self.reasoning}</think>{self.content}"
        return self.content

    def reasoning_on_wire(self) -> str:
        """Reasoning sent in a separate field (empty when it travels inside the content)."""
        if self.unclosed_think or self.omit_think_open or self.think_in_content:
            return ""
        return self.reasoning


@dataclass(slots=True)
class ScriptRequest:
    """One request as the server saw it; `disconnected` is set when the client hung up."""

    endpoint: str
    body: dict[str, Any]
    disconnected: bool = False
    completed: bool = False


Script = Sequence[ScriptedTurn] | Callable[[ScriptRequest], ScriptedTurn]


class ScriptExhaustedError(RuntimeError):
    """The script has no turn left for a request (answered as HTTP 500)."""


@dataclass(slots=True)
class Counters:
    prompt_tokens: int = 0
    generation_tokens: int = 0
    cache_hits: int = 0
    requests: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class ScriptHost(Protocol):
    """What the app and the wire renderer need from the server that hosts a script."""

    model: str
    latency: float
    chunk_chars: int
    counters: Counters

    def record(self, endpoint: str, body: dict[str, Any]) -> ScriptRequest: ...
    def next_turn(self, req: ScriptRequest) -> ScriptedTurn: ...
    def mark_disconnected(self, req: ScriptRequest) -> None: ...
    def mark_completed(self, req: ScriptRequest) -> None: ...
