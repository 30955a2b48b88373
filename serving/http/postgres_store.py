"""The shared store: threads, runs, events and leases in Postgres, for any number of replicas.

Every replica opens the same database (`THINKRAG_DATABASE_URL`). At start-up the schema
is migrated under an advisory lock, so replicas starting together migrate once; the
LangGraph checkpoint tables (`langgraph-checkpoint-postgres`) are set up under the same
lock. A database with a newer schema than this release is refused.

Replicas coordinate through rows, not messages: a run is claimed with `FOR UPDATE SKIP
LOCKED` (two replicas never take the same one) and held by a lease on the database's
clock. `NOTIFY thinkrag` tells the other replicas about new events, cancel requests and
queued runs, so live tails wake at once; they also poll, so a lost notice costs latency,
never an event.

Statements come from `SqlStore` (`?` placeholders, rewritten to psycopg's `%s`). Calls
are synchronous and short, made from the event loop through a small connection pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool

from serving.http.run_store import Notice, RunRecord, StoreError
from serving.http.sql_store import RUN_COLUMNS, Row, SqlStore, claimable, qualified, run_record

log = logging.getLogger(__name__)

CHANNEL = "thinkrag"
_MIGRATION_LOCK = 0x7468696E6B726167  # "thinkrag": one advisory lock key for start-up

# Entry i takes a database from version i to i + 1, in one transaction (the version
# table holds the number). Floats are double precision: epoch seconds need the digits.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: what the embedded store holds (its versions 0-2).
    (
        """CREATE TABLE threads (
            thread_id TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT '{}',
            temporary INTEGER NOT NULL DEFAULT 0,
            owner TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX threads_by_owner ON threads (owner, temporary, created_at)",
        """CREATE TABLE thread_states (
            thread_id TEXT NOT NULL,
            checkpoint_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (thread_id, checkpoint_id))""",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            thread_id TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            question TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            owner TEXT NOT NULL DEFAULT '',
            attempt INTEGER NOT NULL DEFAULT 0,
            resumable INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            base_state TEXT NOT NULL DEFAULT '{}',
            stream_modes TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX runs_by_thread ON runs (thread_id, created_at)",
        "CREATE INDEX runs_by_status ON runs (status, created_at)",
        """CREATE TABLE events (
            run_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, seq))""",
        """CREATE TABLE responses (
            response_id TEXT PRIMARY KEY,
            thread_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            previous_response_id TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            request TEXT NOT NULL DEFAULT '{}',
            output TEXT,
            stored INTEGER NOT NULL DEFAULT 1,
            position BIGSERIAL)""",
        "CREATE INDEX responses_by_thread ON responses (thread_id, created_at)",
    ),
    # 2: replicas: runs are executed under a lease, and a cancel may come from any replica.
    (
        "ALTER TABLE runs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN lease_expires DOUBLE PRECISION NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def describe(url: str) -> str:
    """`postgresql://user@host:port/db` without the password, for messages and /readyz."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql (unparsable URL)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname', '')}"


class _Conn:
    def __init__(self, conn: psycopg.Connection[Any], sql: dict[str, str]) -> None:
        self._conn = conn
        self._sql = sql

    def run(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("?", "%s")
        cursor = self._conn.execute(text, tuple(args))
        return list(cursor.fetchall()) if cursor.description is not None else []


def _lock(conn: psycopg.Connection[Any], label: str, timeout: float = 120) -> None:
    """Take the start-up lock, polling rather than waiting inside a statement: LangGraph's
    setup builds indexes CONCURRENTLY, which waits for every open transaction, including
    one blocked on this lock (a deadlock when replicas start together)."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK,)).fetchone()
        if row and next(iter(row.values() if isinstance(row, dict) else row)):
            return
        if time.monotonic() > deadline:
            raise StoreError(
                f"another replica has held the migration lock on {label} for {timeout:.0f} s;"
                " check its log"
            )
        time.sleep(0.2)


def migrate(url: str, label: str) -> None:
    """Bring the schema (ours and LangGraph's checkpoint tables) to this release's version,
    once, however many replicas start at the same moment."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    try:
        conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())  # one line: libpq's message spans several
        raise StoreError(
            f"cannot connect to the service database {label}: {reason}; check "
            "THINKRAG_DATABASE_URL (--database-url) and that Postgres is running"
        ) from exc
    with conn:
        _lock(conn, label)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS thinkrag_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) AS v FROM thinkrag_schema").fetchone()
            version = int(row["v"]) if row and row["v"] is not None else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the service database {label} has schema version {version}, newer than "
                    f"this release's {SCHEMA_VERSION}; upgrade thinkrag on every replica, or "
                    "point THINKRAG_DATABASE_URL at another database"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                with conn.transaction():
                    for statement in _MIGRATIONS[target - 1]:
                        conn.execute(statement)
                    conn.execute("DELETE FROM thinkrag_schema")
                    conn.execute("INSERT INTO thinkrag_schema (version) VALUES (%s)", (target,))
            PostgresSaver(conn).setup()  # LangGraph's tables: it needs dict rows, autocommit
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


class PostgresStore(SqlStore):
    _DUPLICATE = (psycopg.errors.UniqueViolation,)
    _RESPONSE_ORDER = "created_at DESC, position DESC"

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self._url = url
        self.label = describe(url)
        migrate(url, self.label)
        self._sql: dict[str, str] = {}
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=False,
            timeout=10,
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open a connection pool to {self.label}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[_Conn]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Conn(conn, self._sql)

    def _now(self) -> float:
        return float(self._run("SELECT extract(epoch FROM clock_timestamp())::float8")[0][0])

    def _notify(self, tx: Any, what: str, run_id: str) -> None:
        tx.run("SELECT pg_notify(?, ?)", (CHANNEL, f"{what}:{run_id}"))

    def close(self) -> None:
        self._pool.close()

    def ping(self) -> str | None:
        try:
            self._run("SELECT 1")
        except Exception as exc:  # pool timeout or a driver error: both mean "not ready"
            return f"the service database {self.label} fails: {type(exc).__name__}: {exc}"
        return None

    def claim_runs(
        self, replica: str, limit: int, lease_seconds: float, *, run_id: str | None = None
    ) -> list[RunRecord]:
        if limit <= 0:
            return []
        now = self._now()
        rows = self._run(
            f"WITH picked AS (SELECT r.run_id FROM runs r WHERE {claimable('r')} AND"
            " (CAST(? AS TEXT) IS NULL OR r.run_id = ?) ORDER BY r.created_at LIMIT ?"
            " FOR UPDATE SKIP LOCKED) UPDATE runs SET lease_owner = ?, lease_expires = ?"
            f" FROM picked WHERE runs.run_id = picked.run_id"
            f" RETURNING {qualified(RUN_COLUMNS, 'runs')}",
            (now, run_id, run_id, limit, replica, now + lease_seconds),
        )
        return sorted((run_record(r) for r in rows), key=lambda r: r.created_at)

    async def notices(self) -> AsyncIterator[Notice]:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    yield ("queued", "")  # (re)connected: whatever was missed, look again
                    async for note in conn.notifies():
                        what, _, run_id = note.payload.partition(":")
                        if what in ("events", "cancel", "queued"):
                            yield (what, run_id)  # type: ignore[misc]
            except psycopg.Error as exc:
                log.warning("lost the LISTEN connection to %s (%s); retrying", self.label, exc)
                await asyncio.sleep(1.0)
