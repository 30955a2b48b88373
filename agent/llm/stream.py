"""Assemble a chat response from its parts: streamed chunks or one non-streamed message.

Both paths go through `ChatAssembly` so reasoning-field handling, `<think>` splitting and
tool-call assembly behave the same whether or not the caller streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.llm.think import ThinkSplitter
from agent.llm.types import ChatResult, Delta, ToolCall, Usage
from agent.llm.wire import (
    ToolCallAssembler,
    finish_reason,
    first_choice,
    parse_usage,
    reasoning_of,
    tool_calls_from_message,
)


class ChatAssembly:
    """Reasoning from the `reasoning`/`reasoning_content` field when the server parsed it;
    otherwise from `<think>` tags in the content."""

    def __init__(self, *, starts_in_reasoning: bool = False) -> None:
        self._splitter = ThinkSplitter(starts_in_reasoning=starts_in_reasoning)
        self._field_reasoning: list[str] = []
        self._plain_content: list[str] = []
        self._saw_field = False
        self._tools = ToolCallAssembler()
        self._message_calls: tuple[ToolCall, ...] = ()
        self._finish: object = None
        self.usage = Usage()
        self.model = ""
        self.budget_cut = False
        self._reasoning_pieces = 0
        self._reasoning_chars = 0

    # -- streaming ---------------------------------------------------------------------------
    def absorb_chunk(self, payload: Any) -> list[Delta]:
        choice = first_choice(payload)
        if payload.get("usage"):
            self.usage = parse_usage(payload["usage"])
        if payload.get("model"):
            self.model = payload["model"]
        if choice is None:
            return []
        out: list[Delta] = []
        delta = choice.get("delta") or {}
        reasoning = reasoning_of(delta)
        if reasoning:
            self._saw_field = True
            self._field_reasoning.append(reasoning)
            out.append(Delta("reasoning", reasoning))
        content = delta.get("content")
        if content:
            out.extend(self._content(content))
        for d in out:
            if d.kind == "reasoning":
                self._reasoning_pieces += 1
                self._reasoning_chars += len(d.text)
        for piece in delta.get("tool_calls") or ():
            index, fragment = self._tools.add(piece)
            out.append(Delta("tool_call", fragment, tool_index=index))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return out

    def _content(self, text: str) -> list[Delta]:
        if self._saw_field:  # the server's reasoning parser already split it
            self._plain_content.append(text)
            return [Delta("content", text)]
        return [Delta(kind, piece) for kind, piece in self._splitter.feed(text)]

    def flush(self) -> list[Delta]:
        return [Delta(kind, piece) for kind, piece in self._splitter.flush()]

    @property
    def finished(self) -> bool:
        return self._finish is not None

    def over_thinking_budget(self, budget: int) -> bool:
        """Reasoning ran clearly past `budget` tokens with no answer yet.

        Tokens are estimated as max(reasoning deltas, chars / 4): vLLM streams about one token
        per delta. The slack leaves the server's own budget enforcement the first chance.
        """
        if self._plain_content or self._splitter.result()[1] or self._tools.result():
            return False
        estimate = max(self._reasoning_pieces, self._reasoning_chars // 4)
        return estimate > budget + max(16, budget // 4)

    def cut_for_budget(self) -> None:
        self.budget_cut = True
        self._finish = "length"

    # -- non-streaming ---------------------------------------------------------------------
    def absorb_message(self, payload: Mapping[str, Any], choice: Mapping[str, Any]) -> None:
        message = choice.get("message") or {}
        reasoning = reasoning_of(message)
        if reasoning is not None:
            self._saw_field = True
            self._field_reasoning.append(reasoning)
        content = message.get("content")
        if isinstance(content, str) and content:
            self._content(content)
        self._splitter.flush()
        self._message_calls = tool_calls_from_message(message.get("tool_calls"))
        self._finish = choice.get("finish_reason")
        self.usage = parse_usage(payload.get("usage"))
        self.model = str(payload.get("model") or "")

    # -- result --------------------------------------------------------------------------
    def result(self, model: str) -> ChatResult:
        tag_reasoning, tag_content = self._splitter.result()
        calls = self._message_calls or self._tools.result()
        return ChatResult(
            content="".join(self._plain_content) + tag_content,
            reasoning="".join(self._field_reasoning) + tag_reasoning,
            tool_calls=calls,
            finish_reason=finish_reason(self._finish, bool(calls)),
            usage=self.usage,
            model=self.model or model,
            thinking_budget_exhausted=self.budget_cut,
        )
