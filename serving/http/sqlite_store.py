"""The embedded store: threads, runs and events in one SQLite file (WAL), for one process.

WAL with `synchronous=NORMAL` survives a killed process (the case we design for); an OS
crash may lose the last commits. One connection, used only from the event loop's
thread: statements are short, and a single writer avoids SQLite lock contention.

The file belongs to one `thinkrag serve` at a time, so opening it releases every lease
(`release_all`): the runs a killed process left are claimed again at once, not after
their leases run out. Replicas need `PostgresStore`.

The schema is versioned with `PRAGMA user_version`: `_SCHEMA` is version 0 and each
`_MIGRATIONS` entry moves a database one version up, so a database written by an older
release opens and keeps its rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from serving.http.run_store import Notice, RunRecord, StoreError
from serving.http.sql_store import RUN_COLUMNS, Row, SqlStore, claimable, run_record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT '{}',
    temporary INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS thread_states (
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    assistant_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    question TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    owner TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0,
    resumable INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    base_state TEXT NOT NULL DEFAULT '{}',
    stream_modes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs (thread_id, created_at);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

# Entry i takes a database from version i to i + 1, in one transaction.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: threads belong to the key that created them; older rows get '' (nobody's key)
    # unless their runs name a single key.
    (
        "ALTER TABLE threads ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS threads_by_owner ON threads (owner, temporary, created_at)",
        # Runs always recorded their key: a thread whose runs all share one takes it.
        "UPDATE threads SET owner = (SELECT min(owner) FROM runs WHERE runs.thread_id ="
        " threads.thread_id) WHERE (SELECT count(DISTINCT owner) FROM runs WHERE"
        " runs.thread_id = threads.thread_id) = 1",
    ),
    # 2: OpenAI Responses API objects: each is one run on a thread; `previous_response_id`
    # continues that thread. `output` is the finished response object, once there is one.
    (
        "CREATE TABLE IF NOT EXISTS responses (response_id TEXT PRIMARY KEY, thread_id TEXT"
        " NOT NULL, run_id TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', previous_response_id"
        " TEXT, created_at REAL NOT NULL, request TEXT NOT NULL DEFAULT '{}', output TEXT,"
        " stored INTEGER NOT NULL DEFAULT 1)",
        "CREATE INDEX IF NOT EXISTS responses_by_thread ON responses (thread_id, created_at)",
    ),
    # 3: runs are executed under a lease, and a cancel may come from another process.
    (
        "ALTER TABLE runs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN lease_expires REAL NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


class _Conn:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def run(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return self._db.execute(sql, tuple(args)).fetchall()


class SqliteStore(SqlStore):
    _DUPLICATE = (sqlite3.IntegrityError,)
    _RESPONSE_ORDER = "created_at DESC, rowid DESC"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"sqlite:{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._conn = _Conn(self._db)
            self.release_all()
        except StoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the service database {path}: {exc}; point THINKRAG_DB_PATH "
                "at a writable file"
            ) from exc

    def _migrate(self) -> None:
        """Apply the migrations this database lacks, each with its version bump, atomically."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # two processes starting at once migrate once
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the service database {self.path} has schema version {version}, newer "
                    f"than this release's {SCHEMA_VERSION}; upgrade thinkrag or point "
                    "THINKRAG_DB_PATH at another file"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target - 1]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def _tx(self) -> Iterator[_Conn]:
        if self._db.in_transaction:  # nested: part of the caller's transaction
            yield self._conn
            return
        with self._db:
            self._db.execute("BEGIN")
            yield self._conn

    def _run(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return self._conn.run(sql, args)  # autocommit: one statement needs no BEGIN

    def _now(self) -> float:
        return time.time()

    def close(self) -> None:
        self._db.close()

    def ping(self) -> str | None:
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            return f"the service database {self.path} fails: {exc}"
        return None

    def claim_runs(
        self, replica: str, limit: int, lease_seconds: float, *, run_id: str | None = None
    ) -> list[RunRecord]:
        if limit <= 0:
            return []
        now = self._now()
        rows = self._run(
            f"UPDATE runs SET lease_owner = ?, lease_expires = ? WHERE run_id IN (SELECT"
            f" r.run_id FROM runs r WHERE {claimable('r')} AND (? IS NULL OR r.run_id = ?)"
            f" ORDER BY r.created_at LIMIT ?) RETURNING {RUN_COLUMNS}",
            (replica, now + lease_seconds, now, run_id, run_id, limit),
        )
        return sorted((run_record(r) for r in rows), key=lambda r: r.created_at)

    async def notices(self) -> AsyncIterator[Notice]:
        await asyncio.Event().wait()  # one process: nobody else to hear from
        yield ("queued", "")  # pragma: no cover - never reached
