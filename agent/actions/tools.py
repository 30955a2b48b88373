"""`tools` protocol: native OpenAI tool calls, parsed by the server's tool-call parser.

With `tool_choice="required"` (models that never call tools on `auto`, like SmolLM2) an
extra `answer` tool lets the model finish; with `auto`, plain content is the answer.

Live answer streaming: a step streams its content as the answer only when the request
offers no tools at all (`auto` once the tool-call budget is spent). The client does
surface tool-call deltas before the result, but a model may write content and only then
call a tool ("Let me look that up." + call), so while tools are offered no prefix of the
content is known to be the answer until the call ends: those steps stay buffered, as does
an `answer` tool call (its text arrives as JSON arguments).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from pydantic import ValidationError

from agent.actions.base import (
    AnswerSink,
    EmitText,
    ModelTurn,
    StepLimits,
    answer_from_reasoning,
)
from agent.actions.base import stream_chat_turn as _stream
from agent.actions.chat import ChatTranscript
from agent.llm.types import Usage
from agent.state import (
    AgentState,
    AnswerDraft,
    ChatTurn,
    StateUpdate,
    ToolCallRecord,
    ToolResultRecord,
)
from agent.tools.answer import AnswerArgs
from agent.tools.base import parameters_schema


@cache
def answer_tool() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "answer",
            "description": "Give the final answer, citing passages as [n].",
            "parameters": parameters_schema(AnswerArgs),
            "strict": True,
        },
    }


class ToolsProtocol(ChatTranscript):
    def tools_for(self, limits: StepLimits) -> list[dict[str, Any]]:
        required = self.config.tool_choice == "required"
        tools = self.deps.toolbox.openai_tools() if limits.allow_tools else []
        return [*tools, answer_tool()] if required else tools

    async def step(
        self,
        state: AgentState,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[ModelTurn, StateUpdate]:
        tools = self.tools_for(limits)
        request = self.request(
            state, limits, tools=tools, tool_choice=self.config.tool_choice if tools else None
        )
        thought, thinking_usage = "", Usage()
        if self.config.think_first:
            request, thought, thinking_usage = await self.think(request, limits, emit)
            live = None  # the continuation carries no reasoning: it stays buffered
        s = await _stream(self.deps.model, request, limits, emit, None if tools else live)
        if self.config.think_first:
            s = replace(s, reasoning=thought, usage=thinking_usage + s.usage)
        if s.overrun:
            return ModelTurn(s.reasoning, s.content, usage=s.usage, note="thinking_overrun"), {}
        calls = s.result.tool_calls if s.result is not None else ()
        actions: list[ToolCallRecord] = []
        answer: AnswerDraft | None = None
        for c in calls:
            if c.name == "answer":
                answer = _answer_args(c.arguments) or answer
            else:
                actions.append(ToolCallRecord(id=c.id, name=c.name, arguments=c.arguments))
        if actions:
            update = self.record_actions(state, actions, content=s.content)
            return ModelTurn(s.reasoning, s.content, tuple(actions), usage=s.usage), update
        if answer is None and s.content.strip():
            answer = AnswerDraft(text=s.content.strip())
        if answer is None and s.reasoning.strip() and (s.result is None or not calls):
            fallback = answer_from_reasoning(s.reasoning)
            answer = AnswerDraft(text=fallback) if fallback else None
        if answer is None:
            return ModelTurn(s.reasoning, s.content, usage=s.usage, note="empty"), {}
        return ModelTurn(s.reasoning, s.content, answer=answer, usage=s.usage), {}

    def record_actions(
        self, state: AgentState, actions: Sequence[ToolCallRecord], content: str = ""
    ) -> StateUpdate:
        turn = ChatTurn(role="assistant", content=content, tool_calls=tuple(actions), kind="action")
        return {"transcript": [*state.transcript, turn]}

    def observe(self, state: AgentState, results: Sequence[ToolResultRecord]) -> StateUpdate:
        turns = list(state.transcript)
        for r in results:
            turns.append(
                ChatTurn(
                    role="tool",
                    content=r.observation,
                    tool_call_id=r.call_id,
                    name=r.name,
                    kind="observation",
                )
            )
        return {"transcript": turns}


def _answer_args(arguments: str) -> AnswerDraft | None:
    try:
        args = AnswerArgs.model_validate(json.loads(arguments or "{}"))
    except (json.JSONDecodeError, ValidationError):
        return None
    return AnswerDraft(text=args.answer, citations=tuple(args.citations))
