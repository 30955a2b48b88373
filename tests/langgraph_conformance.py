"""The conformance script (no tests here): one langgraph-sdk session run against any server
implementing the LangGraph Agent Server API, recorded as comparable observations.

Each step records what a client can rely on: the HTTP status, the object keys, and for
streams the SSE event names in order. Values that differ by nature (ids, timestamps,
texts) are never recorded. `diff` lists the steps where two servers disagree;
`tests/test_langgraph_conformance.py` runs it against `thinkrag serve` and `langgraph dev`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from langgraph_sdk import get_client

QUESTION = "What is the capital of Freedonia?"
FOLLOW_UP = "Which city is the capital again?"


@dataclass(frozen=True)
class Observation:
    step: str
    status: int
    shape: Any  # keys, or event names in order


def keys(value: Any) -> Any:
    """The comparable shape of a JSON value: sorted keys of an object (of the first item of
    a list), the type name of anything else."""
    if isinstance(value, dict):
        return sorted(value)
    if isinstance(value, list):
        return ["list", keys(value[0])] if value else ["list"]
    return type(value).__name__


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Observation] = []

    async def call(
        self, step: str, make: Callable[[], Awaitable[Any]], shape: Callable[[Any], Any] = keys
    ) -> Any:
        try:
            value = await make()
        except httpx.HTTPStatusError as exc:
            self.seen.append(Observation(step, exc.response.status_code, None))
            return None
        self.seen.append(Observation(step, 200, shape(value)))
        return value

    async def stream(self, step: str, parts: Any) -> list[Any]:
        got: list[Any] = []
        try:
            async for part in parts:
                got.append(part)
        except httpx.HTTPStatusError as exc:
            self.seen.append(Observation(step, exc.response.status_code, None))
            return []
        if got and got[-1].event == "end":
            got.pop()  # thinkrag's run-ended marker (README: LangGraph conformance exceptions)
        names = [p.event for p in got]
        shapes = sorted({(p.event, repr(keys(_payload(p)))) for p in got})
        self.seen.append(Observation(step, 200, {"events": names, "keys": shapes}))
        return got


def _payload(part: Any) -> Any:
    """An SSE part's data; `messages/metadata` is keyed by message id, so its value."""
    data = part.data
    if part.event == "messages/metadata" and isinstance(data, dict) and len(data) == 1:
        return next(iter(data.values()))
    return data


async def run_script(url: str) -> list[Observation]:
    """The session a LangGraph client (Studio, Agent Chat UI, RemoteGraph) goes through."""
    client = get_client(url=url, api_key=None)
    rec = Recorder()
    http = client.http
    await rec.call("GET /ok", lambda: http.get("/ok"))
    await rec.call("GET /info", lambda: http.get("/info"), lambda v: sorted(v))
    found = await rec.call("assistants.search", lambda: client.assistants.search(limit=10))
    aid = found[0]["assistant_id"] if found else "research"
    await rec.call("assistants.get", lambda: client.assistants.get(aid))
    await rec.call("assistants.count", lambda: client.assistants.count())
    await rec.call("assistants.get_graph", lambda: client.assistants.get_graph(aid))
    await rec.call("assistants.get_schemas", lambda: client.assistants.get_schemas(aid))
    thread = await rec.call("threads.create", lambda: client.threads.create(metadata={"k": "v"}))
    tid = thread["thread_id"]
    question = {"messages": [{"type": "human", "content": QUESTION}]}
    await rec.stream(
        "runs.stream values+updates",
        client.runs.stream(tid, aid, input=question, stream_mode=["values", "updates"]),
    )
    await rec.call("threads.get", lambda: client.threads.get(tid))
    state = await rec.call("threads.get_state", lambda: client.threads.get_state(tid))
    await rec.call(
        "threads.get_state values",
        lambda: client.threads.get_state(tid),
        lambda v: sorted(v["values"]),
    )
    history = await rec.call("threads.get_history", lambda: client.threads.get_history(tid))
    await rec.call(
        "history is per checkpoint", lambda: client.threads.get_history(tid), lambda v: len(v) > 2
    )
    checkpoint = (state or {}).get("checkpoint") or {}
    if history:
        checkpoint = history[-1]["checkpoint"]
    await rec.call(
        "threads.get_state(checkpoint_id)",
        lambda: client.threads.get_state(tid, checkpoint_id=checkpoint.get("checkpoint_id")),
    )
    await rec.call(
        "POST /threads/{id}/state/checkpoint",
        lambda: http.post(f"/threads/{tid}/state/checkpoint", json={"checkpoint": checkpoint}),
    )
    await rec.stream(
        "runs.stream messages-tuple",
        client.runs.stream(tid, aid, input={"question": FOLLOW_UP}, stream_mode=["messages-tuple"]),
    )
    for mode in ("debug", "tasks", "checkpoints", "events", "messages"):
        await rec.stream(
            f"runs.stream {mode}",
            client.runs.stream(tid, aid, input={"question": QUESTION}, stream_mode=mode),
        )
    await rec.call("runs.wait", lambda: client.runs.wait(tid, aid, input={"question": FOLLOW_UP}))
    await rec.call("runs.list", lambda: client.runs.list(tid))
    await rec.call(
        "threads.update_state",
        lambda: client.threads.update_state(tid, {"question": ""}, as_node="answer"),
    )
    await rec.call("threads.update (PATCH)", lambda: client.threads.update(tid, metadata={"a": 1}))
    await rec.call("threads.search", lambda: client.threads.search(metadata={"k": "v"}))
    await rec.call("threads.count", lambda: client.threads.count())
    await rec.call("threads.copy", lambda: client.threads.copy(tid))
    await rec.call("threads.delete", lambda: client.threads.delete(tid), lambda v: v)
    return rec.seen


def diff(ours: list[Observation], theirs: list[Observation]) -> list[tuple[str, Any, Any]]:
    """The steps where the two sessions disagree: (step, ours, theirs)."""
    mine = {o.step: o for o in ours}
    other = {o.step: o for o in theirs}
    out = []
    for step in dict.fromkeys([*other, *mine]):
        a, b = mine.get(step), other.get(step)
        if a is None or b is None or (a.status, a.shape) != (b.status, b.shape):
            out.append((step, a, b))
    return out
