"""Render stored run events as LangGraph-server SSE frames for the requested stream modes.

Modes: `values` (the thread values after the run starts, after each tool result and at
the end), `updates` (`{node: update}` per change), `messages-tuple` (SSE event
`messages` with `[message_chunk, metadata]`: reasoning and answer tokens, tool results)
and `custom` (our `agent.events` JSON and service notices, verbatim). Rendering is a
pure fold over the stored events, so a replay after reconnecting yields identical frames
with identical ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Literal, cast, get_args

from pydantic import JsonValue

from agent.events import (
    AnswerDelta,
    ReasoningDelta,
    RunError,
    RunFinished,
    RunStarted,
    ToolCallEvent,
    ToolResultEvent,
    parse_event,
)
from serving.http.errors import ValidationFailedError
from serving.http.run_store import JsonObject, StoredEvent
from serving.http.threadstate import ThreadStateBuilder, ai_message

StreamModeName = Literal["values", "updates", "messages-tuple", "custom"]
SUPPORTED_MODES: tuple[str, ...] = get_args(StreamModeName)
Frame = tuple[str, JsonValue]  # (SSE event name, data)


def normalize_modes(value: str | Sequence[str] | None, default: str = "values") -> list[str]:
    modes = [value] if isinstance(value, str) else list(value or [default])
    bad = [m for m in modes if m not in SUPPORTED_MODES]
    if bad:
        raise ValidationFailedError(
            f"stream_mode {bad[0]!r} is not supported; use any of {', '.join(SUPPORTED_MODES)}",
            param="stream_mode",
        )
    return list(dict.fromkeys(modes))


class GraphStreamRenderer:
    def __init__(
        self, *, run_id: str, thread_id: str, question: str, base: JsonObject, modes: list[str]
    ) -> None:
        self.run_id, self.thread_id = run_id, thread_id
        self.modes = set(modes)
        self.state = ThreadStateBuilder(base)
        self.state.begin(run_id, question)

    def _meta(self, node: str, step: int) -> JsonObject:
        return {
            "run_id": self.run_id, "thread_id": self.thread_id, "langgraph_node": node,
            "langgraph_step": step,
        }  # fmt: skip

    def render(self, stored: StoredEvent) -> list[Frame]:
        if stored.kind == "service":
            data = cast(JsonValue, json.loads(stored.data))
            return [("custom", data)] if "custom" in self.modes else []
        event = parse_event(stored.data)
        frames: list[Frame] = []
        if "custom" in self.modes:
            frames.append(("custom", cast(JsonValue, json.loads(stored.data))))
        changed = self.state.apply(event)
        last = self.state.messages[-1] if self.state.messages else None
        if "messages-tuple" in self.modes:
            frames.extend(self._messages(event, last))
        if "updates" in self.modes and changed:
            node = {ToolCallEvent: "reason", ToolResultEvent: "tools", RunFinished: "answer"}
            update: JsonObject = {"messages": [last]}
            if isinstance(event, RunFinished):
                update.update(
                    answer=self.state.state["answer"], sources=self.state.state["sources"]
                )
            frames.append(("updates", {node[type(event)]: update}))
        if "values" in self.modes and (
            isinstance(event, RunStarted | ToolResultEvent | RunFinished)
        ):
            frames.append(("values", self.state.state))
        if isinstance(event, RunError):
            frames.append(("error", {"error": event.kind, "message": event.message}))
        return frames

    def _messages(self, event: object, last: JsonValue) -> Iterable[Frame]:
        if isinstance(event, ReasoningDelta):
            chunk = ai_message(
                f"{self.run_id}-s{event.step}",
                "",
                additional_kwargs={"reasoning_content": event.text},
            )
            chunk["type"] = "AIMessageChunk"
            yield ("messages", [chunk, self._meta("reason", event.step)])
        elif isinstance(event, AnswerDelta):
            chunk = ai_message(f"{self.run_id}-answer", event.text)
            chunk["type"] = "AIMessageChunk"
            yield ("messages", [chunk, self._meta("answer", event.step)])
        elif isinstance(event, ToolResultEvent):
            yield ("messages", [last, self._meta("tools", event.step)])
