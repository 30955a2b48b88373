"""What every action protocol provides, and the shared streaming of one chat call.

A protocol owns how the transcript looks on the wire (chat messages or one growing
raw prompt) and how a model turn becomes actions; the graph nodes own budgets, tools,
citations and events, so those behave the same whatever the protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.config import AgentConfig
from agent.context import estimate_tokens, transcript_tokens
from agent.llm.think import split_think
from agent.llm.types import ChatRequest, ChatResult, Delta, ReasoningModel, Usage
from agent.prompts import Prompts
from agent.state import (
    AgentState,
    AnswerDraft,
    ChatTurn,
    StateUpdate,
    ToolCallRecord,
    ToolResultRecord,
)
from agent.tools.base import ToolBox

EmitText = Callable[[str], None]


class AnswerSink(Protocol):
    """Takes a call's content live, once the call is known to be writing the answer."""

    def feed(self, text: str) -> None: ...

    def finish(self) -> None:
        """The call ended normally: release anything held back."""
        ...


@dataclass(frozen=True, slots=True)
class ProtocolDeps:
    model: ReasoningModel
    config: AgentConfig
    prompts: Prompts
    toolbox: ToolBox


@dataclass(frozen=True, slots=True)
class StepLimits:
    max_tokens: int  # completion tokens for the call (thinking + visible)
    thinking_tokens: int
    allow_tools: bool  # False once the tool-call budget is spent: answer only
    deadline_at: float  # time.time() value


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """One model call, parsed into what the graph acts on."""

    reasoning: str
    content: str
    actions: tuple[ToolCallRecord, ...] = ()
    answer: AnswerDraft | None = None
    usage: Usage = field(default_factory=Usage)
    note: str | None = None  # "thinking_overrun" | "empty" | "invalid_action: ..."


class ActionProtocol(Protocol):
    def begin(self, state: AgentState, question: str) -> StateUpdate:
        """State update that adds a new question to the thread's transcript."""
        ...

    async def step(
        self,
        state: AgentState,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[ModelTurn, StateUpdate]:
        """One model call; returns the parsed turn and the transcript update.

        `live` gets the content as it arrives only when the protocol knows before the call that
        whatever content comes is the answer; otherwise it is left unused.
        """
        ...

    def record_actions(self, state: AgentState, actions: Sequence[ToolCallRecord]) -> StateUpdate:
        """Add actions to the transcript as if the model had asked for them (prefetch)."""
        ...

    def observe(self, state: AgentState, results: Sequence[ToolResultRecord]) -> StateUpdate: ...

    def nudge(self, state: AgentState, text: str) -> StateUpdate: ...

    def record_answer(self, state: AgentState, answer: str) -> StateUpdate: ...

    async def free_text(
        self,
        state: AgentState,
        instruction: str,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[str, Usage]:
        """A call without tools (finalize, plan, condense) on top of the transcript.

        Pass `live` only when the text is the run's answer (finalize); protocols whose
        visible output is not plain answer text leave it unused.
        """
        ...

    def context_size(self, state: AgentState) -> int: ...

    def compact(self, state: AgentState, limit: int) -> StateUpdate | None: ...


@dataclass(frozen=True, slots=True)
class StreamedTurn:
    reasoning: str
    content: str
    result: ChatResult | None  # None when we stopped reading (thinking overrun)
    usage: Usage
    overrun: bool


async def stream_chat_turn(
    model: ReasoningModel,
    request: ChatRequest,
    limits: StepLimits,
    emit: EmitText,
    live: AnswerSink | None = None,
) -> StreamedTurn:
    """Stream one chat call, forwarding reasoning live and enforcing the thinking budget.

    When the reasoning passes `limits.thinking_tokens` we stop reading and close the
    stream (the server sees the disconnect and stops generating).

    With a `live` sink the content goes to it as it arrives, but only if reasoning came
    first: content without reasoning before it may be the head of a think block whose
    `<think>` the chat template pre-filled, which a later `</think>` turns into reasoning
    (see `agent.llm.think`), so such a call stays buffered. A streamed call keeps the
    streamed content as its content (clients already have it, so no late `<think>`
    re-split) and is no longer cut for thinking once the answer has begun, like the
    client's own thinking-budget safety net.
    """
    reasoning: list[str] = []
    content: list[str] = []
    streaming = False  # decided at the first content delta
    reasoning_tokens = 0
    result: ChatResult | None = None
    overrun = False
    remaining = max(0.001, limits.deadline_at - time.time())
    stream = model.stream_chat(request)
    try:
        async with asyncio.timeout(remaining):
            async for item in stream:
                if isinstance(item, ChatResult):
                    result = item
                    break
                if not isinstance(item, Delta):
                    continue
                if item.kind == "reasoning" and item.text:
                    reasoning.append(item.text)
                    emit(item.text)
                    reasoning_tokens += estimate_tokens(item.text)
                    if reasoning_tokens > limits.thinking_tokens and not streaming:
                        overrun = True
                        break
                elif item.kind == "content" and item.text:
                    if not content:
                        streaming = live is not None and bool(reasoning)
                    content.append(item.text)
                    if streaming and live is not None:
                        live.feed(item.text)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if result is not None and streaming and live is not None:
        live.finish()
        return StreamedTurn(
            reasoning=result.reasoning,
            content="".join(content),
            result=result,
            usage=result.usage,
            overrun=False,
        )
    if result is not None:
        text_reasoning, text_content = result.reasoning, result.content
        if "</think>" in text_content or text_content.lstrip().startswith("<think>"):
            extra, text_content = split_think(text_content)
            text_reasoning += extra
        return StreamedTurn(
            reasoning=text_reasoning,
            content=text_content,
            result=result,
            usage=result.usage,
            overrun=False,
        )
    prompt = transcript_tokens([ChatTurn(role=m.role, content=m.content) for m in request.messages])
    usage = Usage(
        prompt_tokens=prompt, completion_tokens=reasoning_tokens, reasoning_tokens=reasoning_tokens
    )
    return StreamedTurn(
        reasoning="".join(reasoning),
        content="".join(content),
        result=None,
        usage=usage,
        overrun=overrun,
    )


def answer_from_reasoning(reasoning: str) -> str:
    """Weak models sometimes put the answer only in their reasoning: take its last paragraph."""
    paragraphs = [p.strip() for p in reasoning.split("\n\n") if p.strip()]
    return paragraphs[-1] if paragraphs else ""
