"""Tool outcomes kept by call id, so a resumed step never runs a finished call again.

A run resumes from its last checkpoint, the end of the last completed node. When a
process dies while the act node waits on a slow call, the calls that had already
returned would run again on resume (a second web fetch, a second MCP side effect). The
act node therefore records each call's outcome the moment its tool returns, before the
step's events go out or its checkpoint is written, and on a re-run takes the recorded
outcome instead of calling the tool. A call still in flight at the crash has no record
and runs again: nothing can know whether it took effect.

Records are keyed by (thread, run, step, call id): call ids are unique within a step
(model-issued ids, `action-N`, `prefetch-0`), steps within a run. The runner drops a
run's records once it finishes; `forget_thread` drops a deleted thread's.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol

from agent.events import Source
from agent.state import ToolResultRecord
from agent.tools.base import Citable, ToolOutput
from retrieval.types import Hit, Passage

Outcome = ToolOutput | ToolResultRecord  # what `ToolBox.execute` returns


class ToolJournal(Protocol):
    async def recall(self, thread_id: str, run_id: str, step: int, call_id: str) -> Outcome | None:
        """The outcome recorded for this call, or None when it never finished."""
        ...

    async def record(
        self, thread_id: str, run_id: str, step: int, call_id: str, outcome: Outcome
    ) -> None: ...

    async def forget_run(self, thread_id: str, run_id: str) -> None: ...

    async def forget_thread(self, thread_id: str) -> None: ...


def _passage(p: Citable) -> dict[str, Any]:
    if isinstance(p, Source):
        return {"source": p.model_dump(mode="json")}
    kind = "hit" if isinstance(p, Hit) else "passage"
    return {kind: dataclasses.asdict(p)}


def _citable(data: dict[str, Any]) -> Citable:
    if "source" in data:
        return Source.model_validate(data["source"])
    if "hit" in data:
        return Hit(**data["hit"])
    return Passage(**data["passage"])


def encode(outcome: Outcome) -> str:
    if isinstance(outcome, ToolResultRecord):
        return json.dumps({"result": outcome.model_dump(mode="json")})
    out = {
        "text": outcome.text,
        "passages": [_passage(p) for p in outcome.passages],
        "scores": list(outcome.scores),
        "cached": outcome.cached,
        "cache_key": outcome.cache_key,
    }
    return json.dumps({"output": out})


def decode(text: str) -> Outcome:
    data = json.loads(text)
    if "result" in data:
        return ToolResultRecord.model_validate(data["result"])
    out = data["output"]
    return ToolOutput(
        text=out["text"],
        passages=tuple(_citable(p) for p in out["passages"]),
        scores=tuple(out["scores"]),
        cached=out["cached"],
        cache_key=out["cache_key"],
    )


_TABLE = """
CREATE TABLE IF NOT EXISTS tool_results (
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (thread_id, run_id, step, call_id)
)
"""


class SqliteToolJournal:
    """The journal in the agent's checkpoint database, beside the checkpoints it guards.

    `lock` is the checkpoint saver's: both share one aiosqlite connection, and a commit
    here must not land in the middle of the saver's statements.
    """

    def __init__(self, conn: Any, lock: Any) -> None:
        self._conn = conn
        self._lock = lock

    async def setup(self) -> None:
        async with self._lock:
            await self._conn.execute(_TABLE)
            await self._conn.commit()

    async def recall(self, thread_id: str, run_id: str, step: int, call_id: str) -> Outcome | None:
        async with (
            self._lock,
            self._conn.execute(
                "SELECT outcome FROM tool_results WHERE thread_id = ? AND run_id = ?"
                " AND step = ? AND call_id = ?",
                (thread_id, run_id, step, call_id),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else decode(row[0])

    async def record(
        self, thread_id: str, run_id: str, step: int, call_id: str, outcome: Outcome
    ) -> None:
        async with self._lock:
            await self._conn.execute(
                "INSERT OR REPLACE INTO tool_results (thread_id, run_id, step, call_id,"
                " outcome) VALUES (?, ?, ?, ?, ?)",
                (thread_id, run_id, step, call_id, encode(outcome)),
            )
            await self._conn.commit()

    async def forget_run(self, thread_id: str, run_id: str) -> None:
        async with self._lock:
            await self._conn.execute(
                "DELETE FROM tool_results WHERE thread_id = ? AND run_id = ?", (thread_id, run_id)
            )
            await self._conn.commit()

    async def forget_thread(self, thread_id: str) -> None:
        async with self._lock:
            await self._conn.execute("DELETE FROM tool_results WHERE thread_id = ?", (thread_id,))
            await self._conn.commit()
