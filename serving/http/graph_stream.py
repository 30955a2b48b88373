"""Render a run's stored events as LangGraph-server SSE frames for the requested modes.

`values`, `updates`, `debug`, `tasks` and `checkpoints` are the graph's own stream chunks
(`GraphChunk` rows, relayed as LangGraph sends them), so they are the real graph state
and the real node names. `messages-tuple` (SSE event `messages`, `[message, metadata]`)
and `messages` (`messages/metadata` then `messages/complete` per message) come from the
graph's `messages` chunks: the messages its nodes write. `custom` carries our
`agent.events` JSON and service notices verbatim (token-level reasoning and answer text
live there). Rendering is a pure function of the stored rows, so a replay after
reconnecting yields identical frames with identical ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Literal, cast, get_args

from pydantic import JsonValue

from agent.events import GraphChunk, RunError, parse_event
from serving.http.errors import ValidationFailedError
from serving.http.run_store import StoredEvent

StreamModeName = Literal[
    "values", "updates", "messages-tuple", "messages", "custom", "debug", "tasks", "checkpoints"
]
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
    def __init__(self, *, modes: list[str]) -> None:
        self.modes = set(modes)

    def render(self, stored: StoredEvent) -> list[Frame]:
        if stored.kind == "service":
            data = cast(JsonValue, json.loads(stored.data))
            return [("custom", data)] if "custom" in self.modes else []
        event = parse_event(stored.data)
        if isinstance(event, GraphChunk):
            return list(self._graph(event))
        frames: list[Frame] = []
        if "custom" in self.modes:
            frames.append(("custom", cast(JsonValue, json.loads(stored.data))))
        if isinstance(event, RunError):
            frames.append(("error", {"error": event.kind, "message": event.message}))
        return frames

    def _graph(self, chunk: GraphChunk) -> Iterable[Frame]:
        mode, data = chunk.mode, chunk.data
        if mode == "messages":
            if "messages-tuple" in self.modes:
                yield ("messages", data)
            if "messages" in self.modes and isinstance(data, list) and len(data) == 2:
                message, meta = data
                msg_id = message.get("id") if isinstance(message, dict) else None
                yield ("messages/metadata", {str(msg_id): {"metadata": meta}})
                yield ("messages/complete", [message])
        elif mode in self.modes:
            if mode == "debug" and isinstance(data, dict) and data.get("type") == "checkpoint":
                data = {**data, "payload": checkpoint_payload(data.get("payload"))}
            yield (mode, data)


def checkpoint_config(config: JsonValue) -> JsonValue:
    """A run config as the LangGraph API's checkpoint object (thread, namespace, id)."""
    if not isinstance(config, dict) or not isinstance(config.get("configurable"), dict):
        return None
    conf = config["configurable"]
    assert isinstance(conf, dict)
    keys = ("thread_id", "checkpoint_ns", "checkpoint_id")
    return {k: conf.get(k) for k in keys}


def checkpoint_payload(payload: JsonValue) -> JsonValue:
    """A debug checkpoint payload with the `checkpoint` and `parent_checkpoint` objects the
    LangGraph API adds beside the raw configs."""
    if not isinstance(payload, dict):
        return payload
    return {
        **payload,
        "checkpoint": checkpoint_config(payload.get("config")),
        "parent_checkpoint": checkpoint_config(payload.get("parent_config")),
    }
