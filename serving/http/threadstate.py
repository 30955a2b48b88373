"""A thread's values (`{"messages": [...], "sources": [...], "answer": ...}`) built from events.

Messages use the serialized LangChain shape (`type`: human / ai / tool) that the
LangGraph server returns, so `langgraph-sdk` users read them as they would any graph's.
The same fold feeds the `values` stream mode and the stored thread state.
"""

from __future__ import annotations

import copy
import json

from pydantic import JsonValue

from agent.events import Event, GraphChunk, RunFinished, ToolCallEvent, ToolResultEvent

JsonObject = dict[str, JsonValue]


def human_message(run_id: str, text: str) -> JsonObject:
    return {
        "type": "human", "content": text, "id": f"{run_id}-q", "name": None,
        "additional_kwargs": {}, "response_metadata": {}, "example": False,
    }  # fmt: skip


def ai_message(msg_id: str, content: str, **extra: JsonValue) -> JsonObject:
    base: JsonObject = {
        "type": "ai", "content": content, "id": msg_id, "name": None, "additional_kwargs": {},
        "response_metadata": {}, "tool_calls": [], "invalid_tool_calls": [],
        "usage_metadata": None, "example": False,
    }  # fmt: skip
    base.update(extra)
    return base


def _arguments(text: str) -> JsonValue:
    try:
        value: JsonValue = json.loads(text)
        return value if isinstance(value, dict) else {"value": value}
    except ValueError:
        return {"raw": text}


class ThreadStateBuilder:
    def __init__(self, base: JsonObject) -> None:
        self.state: JsonObject = copy.deepcopy(base) if base else {}
        self.state.setdefault("messages", [])
        self.state.setdefault("sources", [])
        self.state.setdefault("answer", None)
        self.from_graph = False

    @property
    def messages(self) -> list[JsonValue]:
        msgs = self.state["messages"]
        assert isinstance(msgs, list)
        return msgs

    def begin(self, run_id: str, question: str) -> None:
        self.messages.append(human_message(run_id, question))
        self.state["answer"] = None
        self.state["sources"] = []

    def apply(self, event: Event) -> bool:
        """Fold one event in; True when the values changed. Once the graph's own `values`
        arrive, they are the thread's values and the fold of typed events stops."""
        if isinstance(event, GraphChunk):
            if event.mode == "values" and isinstance(event.data, dict):
                self.state = dict(event.data)
                self.from_graph = True
                return True
            return False
        if self.from_graph:
            return False
        if isinstance(event, ToolCallEvent):
            msg_id = f"{event.run_id}-s{event.step}"
            last = self.messages[-1] if self.messages else None
            call: JsonObject = {
                "name": event.name, "args": _arguments(event.arguments), "id": event.call_id,
                "type": "tool_call",
            }  # fmt: skip
            if isinstance(last, dict) and last.get("id") == msg_id:
                calls = last["tool_calls"]
                assert isinstance(calls, list)
                calls.append(call)
            else:
                self.messages.append(ai_message(msg_id, "", tool_calls=[call]))
            return True
        if isinstance(event, ToolResultEvent):
            self.messages.append(
                {
                    "type": "tool",
                    "content": event.observation,
                    "tool_call_id": event.call_id,
                    "name": event.name,
                    "id": f"{event.run_id}-{event.call_id}",
                    "status": "success" if event.ok else "error",
                    "additional_kwargs": {},
                    "response_metadata": {},
                }
            )
            return True
        if isinstance(event, RunFinished):
            sources: list[JsonValue] = [s.model_dump() for s in event.sources]
            usage = event.usage
            self.messages.append(
                ai_message(
                    f"{event.run_id}-answer",
                    event.answer,
                    response_metadata={
                        "sources": sources,
                        "finalized_reason": event.finalized_reason,
                    },
                    usage_metadata={
                        "input_tokens": usage.prompt_tokens,
                        "output_tokens": usage.completion_tokens,
                        "total_tokens": usage.total_tokens,
                    },
                )
            )
            self.state["sources"] = sources
            self.state["answer"] = event.answer
            return True
        return False
