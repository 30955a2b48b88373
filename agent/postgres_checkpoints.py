"""LangGraph checkpoints and the tool journal in Postgres, for replicas.

When the service runs as several replicas over one Postgres database, a run cut off on
one replica resumes on another from its last checkpoint, so the checkpoints live in that
database too. The tables are LangGraph's own; the service migrates them at start-up
under its advisory lock, so `setup()` here finds them ready. Like the SQLite saver, only
the thread's latest checkpoint is kept once a run finishes (`prune`). The tool journal
(`agent/tools/journal.py`) lives beside them, so a replica that resumes another's run
takes the tool outcomes that replica had already recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.tools.journal import Outcome, decode, encode

_JOURNAL_LOCK = 0x746F6F6C6A726E6C  # "tooljrnl": replicas create the table once
_JOURNAL = """CREATE TABLE IF NOT EXISTS tool_results (
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (thread_id, run_id, step, call_id))"""


class PostgresToolJournal:
    """`ToolJournal` in the checkpoint database (see `agent/tools/journal.py`)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def setup(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_JOURNAL_LOCK,))
            await conn.execute(_JOURNAL)

    async def recall(self, thread_id: str, run_id: str, step: int, call_id: str) -> Outcome | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT outcome FROM tool_results WHERE thread_id = %s AND run_id = %s"
                " AND step = %s AND call_id = %s",
                (thread_id, run_id, step, call_id),
            )
            row = await cursor.fetchone()
        return None if row is None else decode(row["outcome"])

    async def record(
        self, thread_id: str, run_id: str, step: int, call_id: str, outcome: Outcome
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO tool_results (thread_id, run_id, step, call_id, outcome) VALUES"
                " (%s, %s, %s, %s, %s) ON CONFLICT (thread_id, run_id, step, call_id) DO UPDATE"
                " SET outcome = excluded.outcome",
                (thread_id, run_id, step, call_id, encode(outcome)),
            )

    async def forget_run(self, thread_id: str, run_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM tool_results WHERE thread_id = %s AND run_id = %s", (thread_id, run_id)
            )

    async def forget_thread(self, thread_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM tool_results WHERE thread_id = %s", (thread_id,))


class PostgresCheckpoints:
    """A pool and the async saver on it; `open` connects, `close` lets go."""

    def __init__(self, pool: Any, saver: Any, journal: PostgresToolJournal) -> None:
        self.pool = pool
        self.saver = saver
        self.journal = journal

    @classmethod
    async def open(cls, url: str, state_types: Iterable[Any], *, pool_size: int = 4) -> Any:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        pool: Any = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            # What the saver needs: autocommit, dict rows, and no server-side prepared
            # statements (they break behind a transaction-pooling proxy).
            kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        serde = JsonPlusSerializer(allowed_msgpack_modules=list(state_types))
        saver = AsyncPostgresSaver(pool, serde=serde)
        await saver.setup()  # a no-op once the service's start-up migration ran
        journal = PostgresToolJournal(pool)
        await journal.setup()
        return cls(pool, saver, journal)

    async def prune(self, thread_id: str) -> None:
        """Keep only the thread's latest checkpoint, its writes and the blobs it uses."""
        async with self.pool.connection() as conn, conn.transaction():
            latest = "(SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = %s)"
            for table in ("checkpoints", "checkpoint_writes"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id <> {latest}",
                    (thread_id, thread_id),
                )
            await conn.execute(
                "DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS (SELECT 1"
                " FROM checkpoints c WHERE c.thread_id = b.thread_id AND c.checkpoint_ns ="
                " b.checkpoint_ns AND c.checkpoint -> 'channel_versions' ->> b.channel ="
                " b.version)",
                (thread_id,),
            )

    async def close(self) -> None:
        await self.pool.close()
