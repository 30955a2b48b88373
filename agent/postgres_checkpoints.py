"""LangGraph checkpoints in Postgres (`langgraph-checkpoint-postgres`), for replicas.

When the service runs as several replicas over one Postgres database, a run cut off on
one replica resumes on another from its last checkpoint, so the checkpoints live in that
database too. The tables are LangGraph's own; the service migrates them at start-up
under its advisory lock, so `setup()` here finds them ready. Like the SQLite saver, only
the thread's latest checkpoint is kept once a run finishes (`prune`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class PostgresCheckpoints:
    """A pool and the async saver on it; `open` connects, `close` lets go."""

    def __init__(self, pool: Any, saver: Any) -> None:
        self.pool = pool
        self.saver = saver

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
        return cls(pool, saver)

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
