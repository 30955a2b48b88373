"""The SQL both stores share: every statement is written once, with `?` placeholders.

`SqliteStore` and `PostgresStore` differ in how they connect, migrate, read the clock,
claim runs (Postgres: `FOR UPDATE SKIP LOCKED`) and tell other processes what happened
(Postgres: `NOTIFY`); the rest is here. Booleans are stored as integers in both, so the
same statements read both schemas.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from serving.http.run_store import (
    TERMINAL,
    DuplicateEventError,
    EventKind,
    JsonObject,
    LeaseReport,
    ResponseRecord,
    RunRecord,
    RunStatus,
    StoredEvent,
    ThreadRecord,
    ThreadSnapshot,
    obj,
)

Row = tuple[Any, ...]
_NO_LIMIT = 2**62
_UNFINISHED = "('pending', 'running')"


class Tx(Protocol):
    """One transaction (or one autocommitted statement): run statements, get their rows."""

    def run(self, sql: str, args: Sequence[object] = ()) -> list[Row]: ...


RUN_COLUMNS = (
    "run_id, thread_id, assistant_id, created_at, updated_at, status, question, options,"
    " metadata, owner, attempt, resumable, error, base_state, stream_modes, lease_owner,"
    " cancel_requested"
)
_THREAD_COLUMNS = "thread_id, created_at, updated_at, metadata, state, temporary, owner"
_RESPONSE_COLUMNS = (
    "response_id, thread_id, run_id, owner, previous_response_id, created_at, request,"
    " output, stored"
)


def run_record(row: Row) -> RunRecord:
    return RunRecord(
        str(row[0]), str(row[1]), str(row[2]), float(row[3]), float(row[4]),
        cast(RunStatus, row[5]), str(row[6]), obj(str(row[7])), obj(str(row[8])), str(row[9]),
        int(row[10]), bool(row[11]), cast("str | None", row[12]), obj(str(row[13])),
        json.loads(str(row[14])), str(row[15]), bool(row[16]),
    )  # fmt: skip


def _thread(row: Row) -> ThreadRecord:
    return ThreadRecord(
        str(row[0]), float(row[1]), float(row[2]), obj(row[3]), obj(row[4]), bool(row[5]),
        str(row[6]),
    )  # fmt: skip


def qualified(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{c.strip()}" for c in columns.split(","))


def claimable(alias: str = "r") -> str:
    """SQL true when run `alias` may be claimed at lease time `?`: unfinished, held by no
    live lease, and first in line on its thread."""
    return (
        f"{alias}.status IN {_UNFINISHED} AND ({alias}.lease_owner = '' OR"
        f" {alias}.lease_expires < ?) AND {head_of_line(alias)}"
    )


def head_of_line(alias: str = "r") -> str:
    """SQL true when run `alias` is the first unfinished run of its thread: runs on one
    thread execute one at a time, in the order they were created."""
    return (
        f"NOT EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = {alias}.thread_id"
        f" AND o.status IN {_UNFINISHED} AND (o.created_at < {alias}.created_at OR"
        f" (o.created_at = {alias}.created_at AND o.run_id < {alias}.run_id)))"
    )


class SqlStore(ABC):
    """The shared statements; subclasses provide transactions, the clock and claiming."""

    label: str

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Tx]:
        """A transaction; its statements commit together when the block ends."""

    @abstractmethod
    def _now(self) -> float:
        """The lease clock (Postgres: the database's, so replicas never disagree)."""

    def _run(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        with self._tx() as tx:
            return tx.run(sql, args)

    def _notify(self, tx: Tx, what: str, run_id: str) -> None:  # noqa: B027 - optional hook
        """Tell other processes (a store used by one process tells nobody)."""

    # Threads -------------------------------------------------------------------------
    def create_thread(
        self, thread_id: str, metadata: JsonObject, *, owner: str, temporary: bool = False
    ) -> ThreadRecord:
        now = time.time()
        self._run(
            "INSERT INTO threads (thread_id, created_at, updated_at, metadata, state, temporary,"
            " owner) VALUES (?, ?, ?, ?, '{}', ?, ?)",
            (thread_id, now, now, json.dumps(metadata), int(temporary), owner),
        )
        return ThreadRecord(thread_id, now, now, metadata, {}, temporary, owner)

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        rows = self._run(f"SELECT {_THREAD_COLUMNS} FROM threads WHERE thread_id = ?", (thread_id,))
        return _thread(rows[0]) if rows else None

    def search_threads(self, *, owner: str | None, limit: int, offset: int) -> list[ThreadRecord]:
        sql = f"SELECT {_THREAD_COLUMNS} FROM threads WHERE temporary = 0"
        args: list[object] = []
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        sql += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        rows = self._run(sql, [*args, limit if limit >= 0 else _NO_LIMIT, offset])
        return [_thread(r) for r in rows]

    def update_thread_metadata(self, thread_id: str, metadata: JsonObject) -> None:
        """Merge `metadata` into the thread's (keys given replace those kept)."""
        thread = self.get_thread(thread_id)
        if thread is None:
            return
        merged = {**thread.metadata, **metadata}
        self._run(
            "UPDATE threads SET metadata = ?, updated_at = ? WHERE thread_id = ?",
            (json.dumps(merged), time.time(), thread_id),
        )

    def save_thread_state(self, thread_id: str, checkpoint_id: str, state: JsonObject) -> None:
        now = time.time()
        text = json.dumps(state)
        with self._tx() as tx:
            tx.run(
                "UPDATE threads SET state = ?, updated_at = ? WHERE thread_id = ?",
                (text, now, thread_id),
            )
            tx.run(
                "INSERT INTO thread_states (thread_id, checkpoint_id, created_at, state)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (thread_id, checkpoint_id) DO UPDATE SET"
                " created_at = excluded.created_at, state = excluded.state",
                (thread_id, checkpoint_id, now, text),
            )

    def thread_history(self, thread_id: str, *, limit: int) -> list[ThreadSnapshot]:
        rows = self._run(
            "SELECT checkpoint_id, created_at, state FROM thread_states WHERE thread_id = ?"
            " ORDER BY created_at DESC LIMIT ?",
            (thread_id, limit),
        )
        return [ThreadSnapshot(thread_id, r[0], r[1], obj(r[2])) for r in rows]

    def get_snapshot(self, thread_id: str, checkpoint_id: str) -> ThreadSnapshot | None:
        rows = self._run(
            "SELECT created_at, state FROM thread_states WHERE thread_id = ? AND checkpoint_id = ?",
            (thread_id, checkpoint_id),
        )
        return (
            ThreadSnapshot(thread_id, checkpoint_id, rows[0][0], obj(rows[0][1])) if rows else None
        )

    def delete_thread(self, thread_id: str) -> None:
        with self._tx() as tx:
            tx.run(
                "DELETE FROM events WHERE run_id IN (SELECT run_id FROM runs WHERE thread_id = ?)",
                (thread_id,),
            )
            for table in ("runs", "thread_states", "responses", "threads"):
                tx.run(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))

    def expired_temporary_threads(self, *, idle_before: float, limit: int) -> list[str]:
        rows = self._run(
            "SELECT t.thread_id FROM threads t WHERE t.temporary = 1 AND t.updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND"
            f" (r.status IN {_UNFINISHED} OR r.updated_at >= ?))"
            " ORDER BY t.updated_at LIMIT ?",
            (idle_before, idle_before, limit),
        )
        return [str(r[0]) for r in rows]

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
        with self._tx() as tx:
            tx.run(
                "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at,"
                " status, question, options, metadata, owner, base_state, stream_modes)"
                " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (
                    run_id, thread_id, assistant_id, now, now, question,
                    json.dumps(options), json.dumps(metadata), owner, json.dumps(base_state),
                    json.dumps(list(stream_modes)),
                ),
            )  # fmt: skip
            self._notify(tx, "queued", run_id)
        return RunRecord(
            run_id, thread_id, assistant_id, now, now, "pending", question, options,
            metadata, owner, 0, False, None, base_state, list(stream_modes),
        )  # fmt: skip

    def set_base_state(self, run_id: str, base_state: JsonObject) -> None:
        self._run(
            "UPDATE runs SET base_state = ? WHERE run_id = ?", (json.dumps(base_state), run_id)
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._run(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return run_record(rows[0]) if rows else None

    def list_runs(
        self,
        thread_id: str,
        *,
        limit: int,
        offset: int,
        status: str | None = None,
        owner: str | None = None,
    ) -> list[RunRecord]:
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE thread_id = ?"
        args: list[object] = [thread_id]
        if status:
            sql += " AND status = ?"
            args.append(status)
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        sql += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        args += [limit if limit >= 0 else _NO_LIMIT, offset]
        return [run_record(r) for r in self._run(sql, args)]

    def unfinished_runs(self) -> list[RunRecord]:
        rows = self._run(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status IN {_UNFINISHED} ORDER BY created_at"
        )
        return [run_record(r) for r in rows]

    def active_runs_on_thread(self, thread_id: str) -> int:
        rows = self._run(
            f"SELECT count(*) FROM runs WHERE thread_id = ? AND status IN {_UNFINISHED}",
            (thread_id,),
        )
        return int(rows[0][0])

    def count_unfinished(self, *, owner: str | None = None) -> int:
        sql = f"SELECT count(*) FROM runs WHERE status IN {_UNFINISHED}"
        rows = self._run(sql + " AND owner = ?", (owner,)) if owner is not None else self._run(sql)
        return int(rows[0][0])

    def queue_depth(self) -> int:
        rows = self._run(
            f"SELECT count(*) FROM runs WHERE status IN {_UNFINISHED} AND"
            " (lease_owner = '' OR lease_expires < ?)",
            (self._now(),),
        )
        return int(rows[0][0])

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
        if status in TERMINAL:  # an ended run holds no lease and no pending cancel
            sql += ", lease_owner = '', lease_expires = 0, cancel_requested = 0"
        with self._tx() as tx:
            tx.run(sql + " WHERE run_id = ?", [*args, run_id])
            if status in TERMINAL:
                self._notify(tx, "events", run_id)  # tails waiting for the end wake up

    def delete_run(self, run_id: str) -> None:
        with self._tx() as tx:
            tx.run("DELETE FROM events WHERE run_id = ?", (run_id,))
            tx.run("DELETE FROM runs WHERE run_id = ?", (run_id,))

    # Leases --------------------------------------------------------------------------
    def renew_leases(
        self, replica: str, run_ids: Sequence[str], lease_seconds: float
    ) -> LeaseReport:
        if not run_ids:
            return LeaseReport(frozenset(), frozenset())
        marks = ", ".join("?" for _ in run_ids)
        rows = self._run(
            f"UPDATE runs SET lease_expires = ? WHERE lease_owner = ? AND run_id IN ({marks})"
            " RETURNING run_id, cancel_requested",
            [self._now() + lease_seconds, replica, *run_ids],
        )
        held = {str(r[0]) for r in rows}
        return LeaseReport(
            lost=frozenset(set(run_ids) - held), cancel=frozenset(str(r[0]) for r in rows if r[1])
        )

    def release_lease(self, run_id: str, replica: str) -> None:
        with self._tx() as tx:
            tx.run(
                "UPDATE runs SET lease_owner = '', lease_expires = 0 WHERE run_id = ?"
                " AND lease_owner = ?",
                (run_id, replica),
            )
            self._notify(tx, "queued", run_id)

    def release_all(self, replica: str | None = None) -> None:
        sql = "UPDATE runs SET lease_owner = '', lease_expires = 0 WHERE lease_owner <> ''"
        with self._tx() as tx:
            tx.run(sql + " AND lease_owner = ?", (replica,)) if replica else tx.run(sql)
            self._notify(tx, "queued", "")

    def request_cancel(self, run_id: str) -> None:
        with self._tx() as tx:
            tx.run(
                "UPDATE runs SET cancel_requested = 1 WHERE run_id = ? AND status IN"
                f" {_UNFINISHED}",
                (run_id,),
            )
            self._notify(tx, "cancel", run_id)

    def cancel_pending(self, run_id: str, event: str) -> bool:
        now = self._now()
        with self._tx() as tx:
            rows = tx.run(
                "UPDATE runs SET status = 'interrupted', error = 'cancelled by the client',"
                " resumable = 0, cancel_requested = 0, updated_at = ? WHERE run_id = ? AND"
                f" status IN {_UNFINISHED} AND (lease_owner = '' OR lease_expires < ?)"
                " RETURNING run_id",
                (time.time(), run_id, now),
            )
            if not rows:
                return False
            (last,) = tx.run(
                "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?", (run_id,)
            )[0]
            self._insert_event(tx, run_id, int(last) + 1, "agent", event)
        return True

    # Events --------------------------------------------------------------------------
    def last_seq(self, run_id: str) -> int:
        rows = self._run("SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?", (run_id,))
        return int(rows[0][0])

    def _insert_event(self, tx: Tx, run_id: str, seq: int, kind: EventKind, data: str) -> float:
        now = time.time()
        tx.run(
            "INSERT INTO events (run_id, seq, created_at, kind, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, seq, now, kind, data),
        )
        self._notify(tx, "events", run_id)
        return now

    _DUPLICATE: tuple[type[Exception], ...] = ()  # the driver's unique-violation errors

    def append_event(self, run_id: str, seq: int, kind: EventKind, data: str) -> StoredEvent:
        try:
            with self._tx() as tx:
                now = self._insert_event(tx, run_id, seq, kind, data)
        except self._DUPLICATE as exc:
            raise DuplicateEventError(
                f"event {seq} of run {run_id} is already stored: another replica executes "
                "this run now"
            ) from exc
        return StoredEvent(run_id, seq, now, kind, data)

    def events_after(self, run_id: str, after: int, *, limit: int) -> list[StoredEvent]:
        rows = self._run(
            "SELECT seq, created_at, kind, data FROM events WHERE run_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        )
        return [StoredEvent(run_id, r[0], r[1], cast(EventKind, r[2]), r[3]) for r in rows]

    # Responses (OpenAI Responses API) ------------------------------------------------
    def create_response(self, record: ResponseRecord) -> None:
        self._run(
            f"INSERT INTO responses ({_RESPONSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.response_id, record.thread_id, record.run_id, record.owner,
                record.previous_response_id, record.created_at, json.dumps(record.request),
                None if record.output is None else json.dumps(record.output), int(record.stored),
            ),
        )  # fmt: skip

    def get_response(self, response_id: str) -> ResponseRecord | None:
        rows = self._run(
            f"SELECT {_RESPONSE_COLUMNS} FROM responses WHERE response_id = ?", (response_id,)
        )
        if not rows:
            return None
        r = rows[0]
        return ResponseRecord(
            r[0], r[1], r[2], r[3], r[4], r[5], obj(r[6]),
            None if r[7] is None else obj(r[7]), bool(r[8]),
        )  # fmt: skip

    def set_response_output(self, response_id: str, output: JsonObject) -> None:
        self._run(
            "UPDATE responses SET output = ? WHERE response_id = ?",
            (json.dumps(output), response_id),
        )

    _RESPONSE_ORDER = "created_at DESC"  # SQLite adds rowid, Postgres its position column

    def latest_response_on_thread(self, thread_id: str) -> str | None:
        rows = self._run(
            f"SELECT response_id FROM responses WHERE thread_id = ? ORDER BY"
            f" {self._RESPONSE_ORDER} LIMIT 1",
            (thread_id,),
        )
        return str(rows[0][0]) if rows else None

    def delete_response(self, response_id: str) -> None:
        self._run("DELETE FROM responses WHERE response_id = ?", (response_id,))
