"""`json` protocol: after its reasoning the model writes one JSON action, constrained by
`response_format: json_schema` to a union of our actions, so any model vLLM serves can
drive the agent and an action can always be parsed."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from agent.actions.base import (
    AnswerSink,
    EmitText,
    ModelTurn,
    ProtocolDeps,
    StepLimits,
    answer_from_reasoning,
    stream_chat_turn,
)
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
from agent.tools.base import action_branch, parameters_schema

_FENCE_RE = re.compile(r"^```(?:json)?\s*|\s*```$")


class JsonActionProtocol(ChatTranscript):
    def __init__(self, deps: ProtocolDeps) -> None:
        super().__init__(deps)
        self._schemas: dict[bool, dict[str, Any]] = {}

    def action_schema(self, allow_tools: bool) -> dict[str, Any]:
        cached = self._schemas.get(allow_tools)
        if cached is not None:
            return cached
        box = self.deps.toolbox
        branches = [action_branch(n, box.schema(n)) for n in box.names()] if allow_tools else []
        branches.append(action_branch("answer", parameters_schema(AnswerArgs)))
        schema = branches[0] if len(branches) == 1 else {"anyOf": branches}
        self._schemas[allow_tools] = schema
        return schema

    async def step(
        self,
        state: AgentState,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[ModelTurn, StateUpdate]:
        """Never streams the answer: the visible output is a JSON action."""
        schema = self.action_schema(limits.allow_tools)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "action", "schema": schema, "strict": True},
        }
        request = self.request(state, limits, response_format=response_format)
        s = await stream_chat_turn(self.deps.model, request, limits, emit)
        if s.overrun:
            return ModelTurn(s.reasoning, s.content, usage=s.usage, note="thinking_overrun"), {}
        raw = _FENCE_RE.sub("", s.content.strip())
        if not raw:
            fallback = answer_from_reasoning(s.reasoning)
            if fallback:
                return ModelTurn(
                    s.reasoning, "", answer=AnswerDraft(text=fallback), usage=s.usage
                ), {}
            return ModelTurn(s.reasoning, "", usage=s.usage, note="empty"), {}
        try:
            action = json.loads(raw)
        except json.JSONDecodeError as exc:
            note = f"invalid_action: output is not JSON ({exc.msg})"
            return ModelTurn(s.reasoning, s.content, usage=s.usage, note=note), {}
        if not isinstance(action, dict) or not isinstance(action.get("action"), str):
            note = 'invalid_action: expected an object with an "action" field'
            return ModelTurn(s.reasoning, s.content, usage=s.usage, note=note), {}
        name = action.pop("action")
        if name == "answer":
            try:
                args = AnswerArgs.model_validate(action)
            except ValidationError as exc:
                note = f'invalid_action: answer needs a non-empty "answer" string ({exc})'
                return ModelTurn(s.reasoning, s.content, usage=s.usage, note=note), {}
            draft = AnswerDraft(text=args.answer, citations=tuple(args.citations))
            return ModelTurn(s.reasoning, s.content, answer=draft, usage=s.usage), {}
        step_no = state.step
        call = ToolCallRecord(
            id=f"action-{step_no}", name=name, arguments=json.dumps(action, ensure_ascii=False)
        )
        update = self._assistant(state, raw)
        return ModelTurn(s.reasoning, s.content, (call,), usage=s.usage), update

    async def free_text(
        self,
        state: AgentState,
        instruction: str,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[str, Usage]:
        """The closing answer; a model trained on our actions may still write one as JSON,
        so it is buffered (`live` unused) and unwrapped once complete."""
        text, usage = await super().free_text(state, instruction, limits, emit)
        return _unwrap_action(text), usage

    def _assistant(self, state: AgentState, content: str) -> StateUpdate:
        turn = ChatTurn(role="assistant", content=content, kind="action")
        return {"transcript": [*state.transcript, turn]}

    def record_actions(self, state: AgentState, actions: Sequence[ToolCallRecord]) -> StateUpdate:
        current = state
        for a in actions:
            payload = {"action": a.name, **json.loads(a.arguments or "{}")}
            current = current.merged(
                self._assistant(current, json.dumps(payload, ensure_ascii=False))
            )
        return {"transcript": current.transcript}

    def observe(self, state: AgentState, results: Sequence[ToolResultRecord]) -> StateUpdate:
        text = "\n\n".join(f"Result of {r.name}:\n{r.observation}" for r in results)
        turn = ChatTurn(role="user", content=text, kind="observation")
        return {"transcript": [*state.transcript, turn]}


def _unwrap_action(text: str) -> str:
    """An answer action becomes its text with citation marks; another action is no answer."""
    raw = _FENCE_RE.sub("", text.strip())
    if not raw.startswith("{"):
        return text
    try:
        action = json.loads(raw)
    except json.JSONDecodeError:
        return text
    if not isinstance(action, dict) or not isinstance(action.get("action"), str):
        return text
    answer = action.get("answer")
    if action["action"] != "answer" or not isinstance(answer, str):
        return ""
    cites = action.get("citations")
    numbers = [n for n in cites if isinstance(n, int)] if isinstance(cites, list) else []
    marks = "".join(f"[{n}]" for n in numbers if f"[{n}]" not in answer)
    return f"{answer.strip()} {marks}".strip()
