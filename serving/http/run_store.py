"""What the service keeps about threads, runs and their events, and the `Store` port.

An event is written to the store before any client sees it, numbered per run (1, 2,
...), so a client reconnecting with `Last-Event-ID` resumes exactly after what it already
has, and a restarted (or another) server knows which runs were cut off.

Two implementations: `SqliteStore` (`serving/http/sqlite_store.py`), the embedded default
for one process, and `PostgresStore` (`serving/http/postgres_store.py`), shared by any
number of replicas. `serving/runtime.py:build_store` picks one from the settings.

Runs are executed under a lease: a replica claims a run (`claim_runs`), renews its lease
while it executes (`renew_leases`) and releases it when it stops. A run whose lease ran
out belongs to a dead replica and is claimed again by a live one, which resumes it.

Threads and runs record their `owner` (the creating API key's id, see
`serving/http/auth.py`); the routes filter on it. The methods are synchronous: each is one
short statement or transaction, called from the event loop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from pydantic import JsonValue

from serving.http.textcheck import scrub

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
TERMINAL: frozenset[str] = frozenset({"success", "error", "timeout", "interrupted"})
EventKind = Literal["agent", "service", "graph"]  # graph: LangGraph stream chunks

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
    lease_owner: str = ""  # the replica executing it ('' when none holds it)
    cancel_requested: bool = False  # a client asked to cancel (any replica may have taken it)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """An OpenAI Responses API object: the run that answers it, on the thread it continues."""

    response_id: str
    thread_id: str
    run_id: str
    owner: str
    previous_response_id: str | None
    created_at: float
    request: JsonObject  # what the client asked (input, instructions, format, metadata...)
    output: JsonObject | None  # the finished response object; None while it runs
    stored: bool  # `store=false`: not retrievable and not continuable


@dataclass(frozen=True, slots=True)
class StoredEvent:
    run_id: str
    seq: int
    created_at: float
    kind: EventKind
    data: str  # the event's JSON, relayed as is


@dataclass(frozen=True, slots=True)
class LeaseReport:
    """What `renew_leases` found: runs this replica no longer holds, runs to cancel."""

    lost: frozenset[str]
    cancel: frozenset[str]


NoticeKind = Literal["events", "cancel", "queued"]
Notice = tuple[NoticeKind, str]  # (what happened, the run's id or '')


class StoreError(RuntimeError):
    """The database cannot be used; the message names the database and the fix."""


class DuplicateEventError(StoreError):
    """Another executor already wrote this event number: this one lost the run."""


def obj(text: str) -> JsonObject:
    """A stored JSON object, read tolerantly: rows written before the text check may hold
    lone surrogates, which would make every response that includes them fail."""
    return cast(JsonObject, scrub(json.loads(text)))


class Store(Protocol):
    """Threads, runs, events, leases and Responses API objects (see the module docstring)."""

    label: str  # what the store is, for /readyz and logs (never a password)

    def close(self) -> None: ...
    def ping(self) -> str | None:
        """None when the database answers, else what is wrong."""
        ...

    # Threads
    def create_thread(
        self, thread_id: str, metadata: JsonObject, *, owner: str, temporary: bool = False
    ) -> ThreadRecord: ...
    def get_thread(self, thread_id: str) -> ThreadRecord | None: ...
    def search_threads(self, *, owner: str | None, limit: int, offset: int) -> list[ThreadRecord]:
        """Kept (non-temporary) threads, newest first; only `owner`'s unless it is None
        (`limit=-1`: all of them)."""
        ...

    def update_thread_metadata(self, thread_id: str, metadata: JsonObject) -> None: ...
    def save_thread_state(self, thread_id: str, checkpoint_id: str, state: JsonObject) -> None: ...
    def thread_history(self, thread_id: str, *, limit: int) -> list[ThreadSnapshot]: ...
    def get_snapshot(self, thread_id: str, checkpoint_id: str) -> ThreadSnapshot | None: ...
    def delete_thread(self, thread_id: str) -> None:
        """The thread with its runs, events, states and Responses API objects."""
        ...

    def expired_temporary_threads(self, *, idle_before: float, limit: int) -> list[str]:
        """Temporary threads idle since before `idle_before` (no run on them unfinished or
        updated since), oldest first: what the retention sweep deletes."""
        ...

    # Runs
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
    ) -> RunRecord: ...
    def set_base_state(self, run_id: str, base_state: JsonObject) -> None: ...
    def get_run(self, run_id: str) -> RunRecord | None: ...
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
        ...

    def unfinished_runs(self) -> list[RunRecord]: ...
    def active_runs_on_thread(self, thread_id: str) -> int: ...
    def count_unfinished(self, *, owner: str | None = None) -> int:
        """Pending and running runs of every replica (only `owner`'s unless None)."""
        ...

    def queue_depth(self) -> int:
        """Unfinished runs no live replica holds: the queue every replica takes from."""
        ...

    def set_run_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        resumable: bool = False,
        attempt: int | None = None,
    ) -> None:
        """A terminal status also drops the run's lease and cancel request."""
        ...

    def delete_run(self, run_id: str) -> None: ...

    # Leases: which replica executes which run
    def claim_runs(
        self, replica: str, limit: int, lease_seconds: float, *, run_id: str | None = None
    ) -> list[RunRecord]:
        """Lease up to `limit` runs to `replica`, oldest first: unfinished runs no live
        lease holds (new ones, and those of a replica that died) that are first in line on
        their thread. Two replicas never get the same run. `run_id`: only that run."""
        ...

    def renew_leases(
        self, replica: str, run_ids: Sequence[str], lease_seconds: float
    ) -> LeaseReport: ...
    def release_lease(self, run_id: str, replica: str) -> None: ...
    def release_all(self, replica: str | None = None) -> None:
        """Give up `replica`'s leases (None: everyone's, for a store only this process
        uses), so their runs are claimed at once instead of after the lease expires."""
        ...

    def request_cancel(self, run_id: str) -> None: ...
    def cancel_pending(self, run_id: str, event: str) -> bool:
        """Mark a run nobody holds `interrupted`, storing `event` (its cancellation) as
        its last event in the same transaction; False when a replica holds it."""
        ...

    def notices(self) -> AsyncIterator[Notice]:
        """What other processes did (new events, cancel requests, queued runs), as it
        happens; a store only one process uses never yields."""
        ...

    # Events
    def last_seq(self, run_id: str) -> int: ...
    def append_event(self, run_id: str, seq: int, kind: EventKind, data: str) -> StoredEvent:
        """Store one event; `DuplicateEventError` when `seq` is taken (another replica
        executes the run now)."""
        ...

    def events_after(self, run_id: str, after: int, *, limit: int) -> list[StoredEvent]: ...

    # Responses (OpenAI Responses API)
    def create_response(self, record: ResponseRecord) -> None: ...
    def get_response(self, response_id: str) -> ResponseRecord | None: ...
    def set_response_output(self, response_id: str, output: JsonObject) -> None: ...
    def latest_response_on_thread(self, thread_id: str) -> str | None:
        """The newest response on a thread: the one a follow-up continues in place."""
        ...

    def delete_response(self, response_id: str) -> None: ...
