"""Threads, runs and every streamed event, in SQLite (WAL).

An event is written here before any client sees it, numbered per run (1, 2, ...), so a
client reconnecting with `Last-Event-ID` resumes exactly after what it already has, and
a restarted server knows which runs were cut off. WAL with `synchronous=NORMAL` survives
a killed process (the case we design for); an OS crash may lose the last commits.

One connection, used only from the event loop's thread: statements are short, and a
single writer avoids SQLite lock contention.

Threads and runs record their `owner` (the creating API key's id, see `serving/http/auth.py`);
the routes filter on it. The schema is versioned with `PRAGMA user_version`: `_SCHEMA` is
version 0 and each `_MIGRATIONS` entry moves a database one version up, so a database
written by an older release opens and keeps its rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from pydantic import JsonValue

from serving.http.textcheck import scrub

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
TERMINAL: frozenset[str] = frozenset({"success", "error", "timeout", "interrupted"})
EventKind = Literal["agent", "service"]

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
)
SCHEMA_VERSION = len(_MIGRATIONS)

JsonObject = dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    thread_id: str
    created_at: float
    updated_at: float
    metadata: JsonObject
    state: JsonObject  # the thread's current values: {"messages": [...], "sources": [...]}
    temporary: bool
    owner: str  # the creating key's id; '' for threads from before owners were recorded


@dataclass(frozen=True, slots=True)
class ThreadSnapshot:
    thread_id: str
    checkpoint_id: str
    created_at: float
    state: JsonObject


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: float
    updated_at: float
    status: RunStatus
    question: str
    options: JsonObject
    metadata: JsonObject
    owner: str
    attempt: int
    resumable: bool
    error: str | None
    base_state: JsonObject  # the thread's values when this run started
    stream_modes: list[str]  # what a LangGraph client asked to stream when it created the run

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class StoredEvent:
    run_id: str
    seq: int
    created_at: float
    kind: EventKind
    data: str  # the event's JSON, relayed as is


class StoreError(RuntimeError):
    """The database cannot be used; the message names the file and the fix."""


def _obj(text: str) -> JsonObject:
    """A stored JSON object, read tolerantly: rows written before the text check may hold
    lone surrogates, which would make every response that includes them fail."""
    return cast(JsonObject, scrub(json.loads(text)))


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._migrate()
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

    def close(self) -> None:
        self._db.close()

    # Threads -------------------------------------------------------------------------
    def create_thread(
        self, thread_id: str, metadata: JsonObject, *, owner: str, temporary: bool = False
    ) -> ThreadRecord:
        now = time.time()
        self._db.execute(
            "INSERT INTO threads (thread_id, created_at, updated_at, metadata, state, temporary,"
            " owner) VALUES (?, ?, ?, ?, '{}', ?, ?)",
            (thread_id, now, now, json.dumps(metadata), int(temporary), owner),
        )
        return ThreadRecord(thread_id, now, now, metadata, {}, temporary, owner)

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        row = self._db.execute(
            "SELECT thread_id, created_at, updated_at, metadata, state, temporary, owner"
            " FROM threads WHERE thread_id = ?",
            (thread_id,),
        ).fetchone()
        if row is None:
            return None
        return ThreadRecord(
            row[0], row[1], row[2], _obj(row[3]), _obj(row[4]), bool(row[5]), row[6]
        )

    def search_threads(self, *, owner: str | None, limit: int, offset: int) -> list[ThreadRecord]:
        """Kept (non-temporary) threads, newest first; only `owner`'s unless it is None."""
        sql = "SELECT thread_id FROM threads WHERE temporary = 0"
        args: list[object] = []
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        rows = self._db.execute(
            sql + " ORDER BY created_at DESC LIMIT ? OFFSET ?", [*args, limit, offset]
        ).fetchall()
        return [t for (tid,) in rows if (t := self.get_thread(tid)) is not None]

    def save_thread_state(self, thread_id: str, checkpoint_id: str, state: JsonObject) -> None:
        now = time.time()
        text = json.dumps(state)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE threads SET state = ?, updated_at = ? WHERE thread_id = ?",
                (text, now, thread_id),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO thread_states (thread_id, checkpoint_id, created_at,"
                " state) VALUES (?, ?, ?, ?)",
                (thread_id, checkpoint_id, now, text),
            )

    def thread_history(self, thread_id: str, *, limit: int) -> list[ThreadSnapshot]:
        rows = self._db.execute(
            "SELECT checkpoint_id, created_at, state FROM thread_states WHERE thread_id = ?"
            " ORDER BY created_at DESC LIMIT ?",
            (thread_id, limit),
        ).fetchall()
        return [ThreadSnapshot(thread_id, r[0], r[1], _obj(r[2])) for r in rows]

    def get_snapshot(self, thread_id: str, checkpoint_id: str) -> ThreadSnapshot | None:
        row = self._db.execute(
            "SELECT created_at, state FROM thread_states WHERE thread_id = ? AND checkpoint_id = ?",
            (thread_id, checkpoint_id),
        ).fetchone()
        return (
            None if row is None else ThreadSnapshot(thread_id, checkpoint_id, row[0], _obj(row[1]))
        )

    def delete_thread(self, thread_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            runs = [
                r
                for (r,) in self._db.execute(
                    "SELECT run_id FROM runs WHERE thread_id = ?", (thread_id,)
                )
            ]
            self._db.executemany("DELETE FROM events WHERE run_id = ?", [(r,) for r in runs])
            self._db.execute("DELETE FROM runs WHERE thread_id = ?", (thread_id,))
            self._db.execute("DELETE FROM thread_states WHERE thread_id = ?", (thread_id,))
            self._db.execute("DELETE FROM threads WHERE thread_id = ?", (thread_id,))

    # Runs ----------------------------------------------------------------------------
    def create_run(
        self,
        *,
        run_id: str,
        thread_id: str,
        assistant_id: str,
        question: str,
        options: JsonObject,
        metadata: JsonObject,
        owner: str,
        base_state: JsonObject,
        stream_modes: Sequence[str] = (),
    ) -> RunRecord:
        now = time.time()
        self._db.execute(
            "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at, status,"
            " question, options, metadata, owner, base_state, stream_modes)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
            (
                run_id, thread_id, assistant_id, now, now, question,
                json.dumps(options), json.dumps(metadata), owner, json.dumps(base_state),
                json.dumps(list(stream_modes)),
            ),
        )  # fmt: skip
        return RunRecord(
            run_id, thread_id, assistant_id, now, now, "pending", question, options,
            metadata, owner, 0, False, None, base_state, list(stream_modes),
        )  # fmt: skip

    def set_base_state(self, run_id: str, base_state: JsonObject) -> None:
        self._db.execute(
            "UPDATE runs SET base_state = ? WHERE run_id = ?", (json.dumps(base_state), run_id)
        )

    _RUN_COLUMNS = (
        "run_id, thread_id, assistant_id, created_at, updated_at, status, question, options,"
        " metadata, owner, attempt, resumable, error, base_state, stream_modes"
    )

    @staticmethod
    def _run(row: Sequence[object]) -> RunRecord:
        return RunRecord(
            str(row[0]), str(row[1]), str(row[2]), float(cast(float, row[3])),
            float(cast(float, row[4])), cast(RunStatus, row[5]), str(row[6]),
            _obj(str(row[7])), _obj(str(row[8])), str(row[9]), int(cast(int, row[10])),
            bool(row[11]), cast("str | None", row[12]), _obj(str(row[13])),
            json.loads(str(row[14])),
        )  # fmt: skip

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else self._run(row)

    def list_runs(
        self,
        thread_id: str,
        *,
        limit: int,
        offset: int,
        status: str | None = None,
        owner: str | None = None,
    ) -> list[RunRecord]:
        """A thread's runs, newest first; only `owner`'s unless it is None."""
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs WHERE thread_id = ?"
        args: list[object] = [thread_id]
        if status:
            sql += " AND status = ?"
            args.append(status)
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        sql += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        return [self._run(r) for r in self._db.execute(sql, args).fetchall()]

    def unfinished_runs(self) -> list[RunRecord]:
        rows = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'running')"
            " ORDER BY created_at"
        ).fetchall()
        return [self._run(r) for r in rows]

    def active_runs_on_thread(self, thread_id: str) -> int:
        (n,) = self._db.execute(
            "SELECT count(*) FROM runs WHERE thread_id = ? AND status IN ('pending', 'running')",
            (thread_id,),
        ).fetchone()
        return int(n)

    def set_run_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        resumable: bool = False,
        attempt: int | None = None,
    ) -> None:
        sql = "UPDATE runs SET status = ?, updated_at = ?, error = ?, resumable = ?"
        args: list[object] = [status, time.time(), error, int(resumable)]
        if attempt is not None:
            sql += ", attempt = ?"
            args.append(attempt)
        self._db.execute(sql + " WHERE run_id = ?", [*args, run_id])

    def delete_run(self, run_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    # Events --------------------------------------------------------------------------
    def last_seq(self, run_id: str) -> int:
        (n,) = self._db.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(n)

    def append_event(self, run_id: str, seq: int, kind: EventKind, data: str) -> StoredEvent:
        now = time.time()
        self._db.execute(
            "INSERT INTO events (run_id, seq, created_at, kind, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, seq, now, kind, data),
        )
        return StoredEvent(run_id, seq, now, kind, data)

    def events_after(self, run_id: str, after: int, *, limit: int) -> list[StoredEvent]:
        rows = self._db.execute(
            "SELECT seq, created_at, kind, data FROM events WHERE run_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        ).fetchall()
        return [StoredEvent(run_id, r[0], r[1], cast(EventKind, r[2]), r[3]) for r in rows]
