"""LangGraph `StateSnapshot`s as the LangGraph server's thread-state JSON.

The thread state, its history and the state at a checkpoint come from the agent's own
checkpointer, so `values` is the graph state, `next` the nodes still to run and `tasks`
what each step did, in the shape `langgraph-sdk` and LangGraph Studio read.
"""

from __future__ import annotations

from typing import Any

from pydantic import JsonValue
from pydantic_core import to_jsonable_python

JsonObject = dict[str, JsonValue]


def checkpoint_of(config: Any) -> JsonObject | None:
    """A run config as the API's checkpoint object (None without a checkpoint id)."""
    conf = (config or {}).get("configurable") or {}
    if not conf.get("thread_id") or not conf.get("checkpoint_id"):
        return None
    out: JsonObject = {
        "thread_id": conf["thread_id"],
        "checkpoint_ns": conf.get("checkpoint_ns") or "",
        "checkpoint_id": conf["checkpoint_id"],
    }
    if "checkpoint_map" in conf:
        out["checkpoint_map"] = to_jsonable_python(conf["checkpoint_map"])
    return out


def _task(task: Any) -> JsonObject:
    return {
        "id": task.id,
        "name": task.name,
        "path": to_jsonable_python(task.path),
        "error": None if task.error is None else str(task.error),
        "interrupts": to_jsonable_python(list(task.interrupts)),
        "checkpoint": to_jsonable_python(task.state["configurable"]) if task.state else None,
        "state": None,
        "result": to_jsonable_python(getattr(task, "result", None)),
    }


def thread_state_json(snap: Any) -> JsonObject:
    """One snapshot as the server's ThreadState object."""
    here = checkpoint_of(snap.config)
    parent = checkpoint_of(snap.parent_config)
    return {
        "values": to_jsonable_python(snap.values),
        "next": list(snap.next),
        "tasks": [_task(t) for t in snap.tasks],
        "metadata": to_jsonable_python(snap.metadata or {}),
        "created_at": snap.created_at,
        "checkpoint": here,
        "parent_checkpoint": parent,
        "interrupts": to_jsonable_python(list(getattr(snap, "interrupts", ()))),
        "checkpoint_id": here["checkpoint_id"] if here else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }
