"""Records -> wire models (shared by the LangGraph and native routes)."""

from __future__ import annotations

from datetime import UTC, datetime

from serving.http.run_store import RunRecord, ThreadRecord, ThreadSnapshot
from serving.http.wire import CheckpointOut, RunOut, ThreadOut, ThreadStateOut


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def run_out(run: RunRecord) -> RunOut:
    return RunOut(
        run_id=run.run_id, thread_id=run.thread_id, assistant_id=run.assistant_id,
        created_at=iso(run.created_at), updated_at=iso(run.updated_at), status=run.status,
        metadata=run.metadata, attempt=run.attempt, resumable=run.resumable, error=run.error,
    )  # fmt: skip


def thread_out(thread: ThreadRecord, busy: bool) -> ThreadOut:
    return ThreadOut(
        thread_id=thread.thread_id, created_at=iso(thread.created_at),
        updated_at=iso(thread.updated_at), metadata=thread.metadata,
        status="busy" if busy else "idle", values=thread.state,
        state_updated_at=iso(thread.updated_at),
    )  # fmt: skip


def state_out(thread_id: str, snap: ThreadSnapshot | None, parent: str | None) -> ThreadStateOut:
    here = CheckpointOut(thread_id=thread_id, checkpoint_id=snap.checkpoint_id if snap else None)
    up = CheckpointOut(thread_id=thread_id, checkpoint_id=parent) if parent else None
    return ThreadStateOut(
        values=snap.state if snap else {},
        checkpoint=here,
        checkpoint_id=here.checkpoint_id,
        parent_checkpoint_id=parent,
        created_at=iso(snap.created_at) if snap else None,
        parent_checkpoint=up,
        metadata={"run_id": snap.checkpoint_id} if snap else {},
    )  # fmt: skip
