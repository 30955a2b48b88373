"""The run manager: admits runs, executes them in background tasks, and feeds subscribers.

- Admission is bounded: at most `max_active` runs execute and `max_queued` wait; beyond
  that `submit` raises `QueueFullError` (429), so memory never grows with load. Each API
  key may hold `max_per_key` unfinished runs, of which `max_active_per_key` execute at
  once (`FairSlots`), so one busy key cannot take every slot.
- Every agent event is written to the store (numbered per run) *before* subscribers are
  woken; subscribers only ever read the store, from their own cursor, in small batches.
  A slow reader therefore costs one cursor, never a growing buffer.
- Runs on one thread execute one at a time, in order (a thread is one conversation).
- Runs are executed under a lease in the store (`serving/http/replicas.py`), so several
  processes can share one Postgres store: a run is executed by the replica that claimed
  it, a client may follow it, join it or cancel it through any replica, and a run whose
  replica died (its lease ran out) is claimed and resumed by another.
- Crash recovery (`recover()` at startup, then continually): runs the store lists as
  `running` but no live replica holds were cut off by a dead process. With policy
  `resume` they continue from the agent's last checkpoint (`ResearchAgent.resume`),
  appending after the events already stored; with policy `mark` they become
  `interrupted` + resumable and wait for `POST /v1/runs/{id}/resume`. Runs still
  `pending` simply start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent.config import RunOptions
from agent.errors import ModelError
from agent.events import Event, GraphChunk, RunError, RunFinished, parse_event
from serving.http.errors import ConflictError, NotFoundError, QueueFullError, RateLimitedError
from serving.http.fair_slots import FairSlots
from serving.http.metrics import ServiceMetrics
from serving.http.replicas import Replica
from serving.http.research import ResearchEngine
from serving.http.resume import ResumeFilter
from serving.http.run_store import (
    DuplicateEventError,
    EventKind,
    JsonObject,
    RunRecord,
    RunStatus,
    Store,
    StoredEvent,
)
from serving.http.threadstate import ThreadStateBuilder

log = logging.getLogger(__name__)
Mode = Literal["run", "resume"]
_BATCH = 128


def _graph_modes(run: RunRecord) -> dict[str, list[str]]:
    """The LangGraph stream modes a LangGraph-API run asked for, as the engine's keyword
    (left out for other runs, so engines without LangGraph chunks work unchanged)."""
    return {"graph_modes": list(run.stream_modes)} if run.stream_modes else {}


@dataclass(frozen=True, slots=True)
class NewThread:
    """A thread `submit` creates for the run (temporary: deleted after the retention)."""

    metadata: JsonObject = field(default_factory=dict)
    temporary: bool = False


@dataclass(frozen=True, slots=True)
class RunLimits:
    max_active: int = 8
    max_queued: int = 64
    max_per_key: int = 8
    max_active_per_key: int = 4  # slots one key may execute at once (the rest queue)
    keepalive_seconds: float = 15.0


class _Signal:
    """Wakes every waiter on the next notify; a waiter that arrives later waits for the next."""

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def waiter(self) -> asyncio.Future[None]:
        if self._future is None or self._future.done():
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    def notify(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        self._future = None


@dataclass(eq=False)
class _Handle:
    run: RunRecord
    seq: int
    signal: _Signal = field(default_factory=_Signal)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    started: bool = False
    builder: ThreadStateBuilder | None = None
    lost: bool = False  # another replica took the run over: stop, write nothing more


class RunManager:
    def __init__(
        self,
        store: Store,
        engine: ResearchEngine,
        metrics: ServiceMetrics,
        limits: RunLimits,
        *,
        replica: str = "local",
        lease_seconds: float = 10.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.metrics = metrics
        self.limits = limits
        self._slots = FairSlots(
            limits.max_active, min(limits.max_active_per_key, limits.max_active)
        )
        self._handles: dict[str, _Handle] = {}
        self._thread_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._closing = False
        self._signals: dict[str, _Signal] = {}  # per run: local events or a remote notice
        self._policy: Literal["resume", "mark"] = "resume"
        self.replica = Replica(
            store, self, name=replica, lease_seconds=lease_seconds, poll_seconds=poll_seconds
        )

    # -- admission ----------------------------------------------------------------------
    @property
    def unfinished(self) -> int:
        return len(self._handles)

    @property
    def queue_depth(self) -> int:
        return sum(1 for h in self._handles.values() if not h.started)

    def _admit(self, owner: str) -> None:
        if self._closing:
            raise QueueFullError("the server is shutting down; retry shortly", retry_after=5)
        # Runs held here plus the shared queue no replica holds yet (global with Postgres).
        if self.unfinished + self.store.queue_depth() >= (
            self.limits.max_active + self.limits.max_queued
        ):
            self.metrics.rejected.labels(reason="queue_full").inc()
            raise QueueFullError(
                f"all {self.limits.max_active} run slots and {self.limits.max_queued} queue "
                "places are taken; retry after the Retry-After delay",
                retry_after=5,
            )
        mine = self.store.count_unfinished(owner=owner)  # on every replica
        if mine >= self.limits.max_per_key:
            self.metrics.rejected.labels(reason="runs_per_key").inc()
            raise RateLimitedError(
                f"this API key already has {mine} unfinished runs (limit "
                f"{self.limits.max_per_key}); wait for one to finish or cancel one",
                retry_after=5,
            )

    def submit(
        self,
        *,
        run_id: str,
        thread_id: str,
        assistant_id: str,
        question: str,
        options: RunOptions | None,
        metadata: JsonObject,
        owner: str,
        allow_queue_on_thread: bool = False,
        stream_modes: Sequence[str] = (),
        new_thread: NewThread | None = None,
    ) -> RunRecord:
        """Store a new run and start it in the background (raises 409/429 errors).

        `new_thread` creates the run's thread, only once the run is admitted: a request
        refused with 429 leaves no thread behind (D8)."""
        self._admit(owner)
        if new_thread is not None:
            self.store.create_thread(
                thread_id, new_thread.metadata, owner=owner, temporary=new_thread.temporary
            )
        if not allow_queue_on_thread and self.store.active_runs_on_thread(thread_id):
            raise ConflictError(
                f"thread {thread_id} already has a run in progress; wait for it, cancel it, "
                "or send multitask_strategy='enqueue'"
            )
        opts: JsonObject = json.loads(options.model_dump_json(exclude_none=True)) if options else {}
        thread = self.store.get_thread(thread_id)
        run = self.store.create_run(
            run_id=run_id, thread_id=thread_id, assistant_id=assistant_id, question=question,
            options=opts, metadata=metadata, owner=owner,
            base_state=thread.state if thread else {}, stream_modes=stream_modes,
        )  # fmt: skip
        # Executed here when it is first on its thread and there is room; else it waits in
        # the store for whichever replica has room once its turn comes.
        self.replica.claim(run.run_id)
        return run

    def _signal(self, run_id: str) -> _Signal:
        return self._signals.setdefault(run_id, _Signal())

    def _launch(self, run: RunRecord, mode: Mode) -> _Handle:
        handle = _Handle(
            run=run, seq=self.store.last_seq(run.run_id), signal=self._signal(run.run_id)
        )
        self._handles[run.run_id] = handle
        self.metrics.queued.set(self.queue_depth)
        handle.task = asyncio.create_task(self._execute(handle, mode), name=f"run-{run.run_id}")
        return handle

    # -- execution ----------------------------------------------------------------------
    def _store_event(self, handle: _Handle, kind: EventKind, data: str) -> None:
        handle.seq += 1
        try:
            self.store.append_event(handle.run.run_id, handle.seq, kind, data)
        except DuplicateEventError:
            handle.lost = True  # another replica executes this run now
            raise

    def _append(self, handle: _Handle, event: Event) -> None:
        kind: EventKind = "graph" if isinstance(event, GraphChunk) else "agent"
        self._store_event(handle, kind, event.model_dump_json())
        self.metrics.observe(event)
        if handle.builder is not None:
            handle.builder.apply(event)
        handle.signal.notify()

    def _prepare_state(self, handle: _Handle, mode: Mode) -> None:
        """Fold the thread's values for this run (re-reading stored events on resume)."""
        run = handle.run
        if mode == "run" and handle.seq == 0:
            thread = self.store.get_thread(run.thread_id)
            base = thread.state if thread else {}
            self.store.set_base_state(run.run_id, base)
        else:
            base = run.base_state
        builder = ThreadStateBuilder(base)
        builder.begin(run.run_id, run.question)
        cursor = 0
        while batch := self.store.events_after(run.run_id, cursor, limit=_BATCH):
            for row in batch:
                if row.kind == "agent":
                    builder.apply(parse_event(row.data))
                cursor = row.seq
        handle.builder = builder

    def _append_service(self, handle: _Handle, payload: JsonObject) -> None:
        self._store_event(handle, "service", json.dumps(payload))
        handle.signal.notify()

    async def _execute(self, handle: _Handle, mode: Mode) -> None:
        try:
            await self._attempt(handle, mode)
        except DuplicateEventError:
            log.warning("run %s: another replica executes it now; stopping here", handle.run.run_id)
        if handle.lost:
            self._drop(handle)

    async def _attempt(self, handle: _Handle, mode: Mode) -> None:
        run = handle.run
        status: RunStatus = "error"
        error: str | None = None
        resumable = False
        shutdown = False
        try:
            async with self._thread_locks[run.thread_id], self._slots.hold(run.owner):
                handle.started = True
                self._prepare_state(handle, mode)
                self.metrics.queued.set(self.queue_depth)
                self.metrics.active.inc()
                self.metrics.runs_started.inc()
                try:
                    attempt = run.attempt + 1
                    self.store.set_run_status(run.run_id, "running", attempt=attempt)
                    if attempt > 1:
                        self._append_service(
                            handle,
                            {"type": "run_resumed", "run_id": run.run_id, "attempt": attempt},
                        )
                    status, error, resumable = await self._drive(handle, mode)
                finally:
                    self.metrics.active.dec()
        except asyncio.CancelledError:
            if handle.lost:
                return  # taken over by another replica (see `lost`)
            if not handle.cancel_requested:
                shutdown = True
                raise  # shutdown: the row stays `running` and the next start resumes it
            status, error, resumable = "interrupted", "cancelled by the client", False
            self._append(
                handle,
                RunError(run_id=run.run_id, kind="cancelled", message="the run was cancelled"),
            )
        except DuplicateEventError:
            raise  # lost the run: the replica that has it now records its outcome
        except Exception as exc:  # our own failure: recorded, never leaked as a traceback
            log.exception("run %s failed", run.run_id)
            status, error, resumable = "error", f"internal error: {type(exc).__name__}", True
            self._append(
                handle,
                RunError(
                    run_id=run.run_id, kind="internal_error", resumable=True,
                    message="the service failed while running this run; resume it with "
                    f"POST /v1/runs/{run.run_id}/resume or report the server log",
                ),
            )  # fmt: skip
        finally:
            if not shutdown and not handle.lost:
                self._finish(handle, status, error, resumable)

    async def _drive(self, handle: _Handle, mode: Mode) -> tuple[RunStatus, str | None, bool]:
        run = handle.run
        stream = self._stream(run, mode)
        finished: RunFinished | None = None
        failed: RunError | None = None
        # A resume continues after the events already stored, never repeating them (D2).
        replay = ResumeFilter(self._stored_events(run.run_id)) if mode == "resume" else None
        try:
            async for produced in stream:
                for event in replay.admit(produced) if replay is not None else [produced]:
                    self._append(handle, event)
                    if isinstance(event, RunFinished):
                        finished = event
                    elif isinstance(event, RunError):
                        failed = event
        except ModelError as exc:
            failed = RunError(
                run_id=run.run_id, step=0, kind="model_unavailable", resumable=True,
                message=f"the model server failed ({exc}); check it is running, then resume "
                f"with POST /v1/runs/{run.run_id}/resume",
            )  # fmt: skip
            self._append(handle, failed)
        if finished is not None:
            self._save_thread(handle)
            return "success", None, False
        if failed is not None:
            return "error", f"{failed.kind}: {failed.message}", failed.resumable
        return "error", "the agent stopped without an answer", True

    def _stored_events(self, run_id: str) -> Iterator[Event]:
        cursor = 0
        while batch := self.store.events_after(run_id, cursor, limit=_BATCH):
            for row in batch:
                if row.kind == "agent":
                    yield parse_event(row.data)
                cursor = row.seq

    async def _stream(self, run: RunRecord, mode: Mode) -> AsyncIterator[Event]:
        """The engine's events; a resume with no checkpoint yet starts the run afresh."""
        if mode == "resume":
            async for event in self.engine.resume(
                thread_id=run.thread_id, run_id=run.run_id, **_graph_modes(run)
            ):
                if isinstance(event, RunError) and event.kind == "nothing_to_resume":
                    break  # killed before the first checkpoint: nothing to continue from
                yield event
            else:
                return
        opts = RunOptions.model_validate(run.options) if run.options else None
        async for event in self.engine.run(
            run.question, thread_id=run.thread_id, run_id=run.run_id, options=opts,
            **_graph_modes(run),
        ):  # fmt: skip
            yield event

    def _save_thread(self, handle: _Handle) -> None:
        run = handle.run
        if handle.builder is not None and self.store.get_thread(run.thread_id) is not None:
            self.store.save_thread_state(run.thread_id, run.run_id, handle.builder.state)

    def _finish(
        self, handle: _Handle, status: RunStatus, error: str | None, resumable: bool
    ) -> None:
        run = handle.run
        self.store.set_run_status(run.run_id, status, error=error, resumable=resumable)
        self.metrics.run_ended(run.run_id, status)
        self._drop(handle)

    def _drop(self, handle: _Handle) -> None:
        """Forget a run this replica no longer executes (ended, or taken over)."""
        self._handles.pop(handle.run.run_id, None)
        self._signals.pop(handle.run.run_id, None)
        self.metrics.queued.set(self.queue_depth)
        handle.done.set()
        handle.signal.notify()
        self.replica.wake()  # room for another run; the thread's next run may go now

    # -- the replica's side (`serving/http/replicas.py:Executor`) -----------------------
    def room(self) -> int:
        if self._closing:
            return 0
        return self.limits.max_active + self.limits.max_queued - len(self._handles)

    def adopt(self, run: RunRecord) -> None:
        if run.status == "pending" and run.attempt == 0:
            self._launch(run, "run")
        elif run.status == "running" and self._policy == "mark":
            self.store.set_run_status(
                run.run_id, "interrupted", resumable=True,
                error="the server stopped during this run; resume with POST "
                f"/v1/runs/{run.run_id}/resume",
            )  # fmt: skip
        else:
            self._launch(run, "resume")

    def held(self) -> list[str]:
        return list(self._handles)

    def lost(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            handle = self._handles.get(run_id)
            if handle is not None and handle.task is not None:
                handle.lost = True
                handle.task.cancel()

    def cancel_here(self, run_id: str) -> None:
        handle = self._handles.get(run_id)
        if handle is not None and not handle.cancel_requested:
            handle.cancel_requested = True
            if handle.task is not None:
                handle.task.cancel()

    def woken(self, run_id: str) -> None:
        signal = self._signals.get(run_id)
        if signal is not None:
            signal.notify()

    async def _until_woken(self, run_id: str, timeout: float) -> None:
        """Wait for news of a run executing elsewhere (a notice, or the poll interval)."""
        waiter = self._signal(run_id).waiter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), timeout=timeout)

    # -- control ------------------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist; list runs with GET /threads/ID/runs")
        return run

    async def cancel(self, run_id: str, *, wait: bool = False) -> RunRecord:
        """Cancel a run wherever it is: here, queued, or executing on another replica."""
        run = self.get(run_id)
        if run_id in self._handles:
            self.cancel_here(run_id)
        elif run.done:
            return run
        else:
            event = RunError(run_id=run_id, kind="cancelled", message="the run was cancelled")
            if not self.store.cancel_pending(run_id, event.model_dump_json()):
                self.store.request_cancel(run_id)  # its replica stops it
        return await self.join(run_id) if wait else self.get(run_id)

    async def join(self, run_id: str) -> RunRecord:
        run = self.get(run_id)
        while not run.done:
            handle = self._handles.get(run_id)
            if handle is not None:
                await handle.done.wait()
            else:
                await self._until_woken(run_id, self.replica.poll_seconds)
            run = self.get(run_id)
        return run

    def resume(self, run_id: str, owner: str) -> RunRecord:
        """Continue an interrupted or failed-but-resumable run from its checkpoint."""
        run = self.get(run_id)
        if run_id in self._handles or (not run.done and run.lease_owner):
            raise ConflictError(f"run {run_id} is already executing; join it instead")
        if not (run.resumable or run.status in ("pending", "running")):
            raise ConflictError(f"run {run_id} is {run.status} and not resumable; start a new run")
        self._admit(owner)
        self.store.set_run_status(run_id, "pending", attempt=run.attempt)
        self.replica.claim(run_id)  # attempt > 0: adopted as a resume
        return self.get(run_id)

    async def recover(self, policy: Literal["resume", "mark"]) -> list[str]:
        """Pick up the runs no live process holds (a previous process left them), then
        keep doing so as a replica; returns the ids taken now."""
        self._policy = policy
        taken = [run.run_id for run in self.replica.claim()]
        self.replica.start()
        return taken

    async def shutdown(self) -> None:
        """Stop executing; unfinished runs stay `running` in the store, and their leases
        are released so another replica (or the next start) resumes them at once."""
        self._closing = True
        await self.replica.stop()
        tasks = [h.task for h in self._handles.values() if h.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.store.release_all(self.replica.name)

    def refresh_gauges(self) -> None:
        """Set this replica's gauges from what it holds and the shared queue."""
        self.metrics.queued.set(self.queue_depth)
        self.metrics.leases.set(len(self._handles))
        self.metrics.store_queue.set(self.store.queue_depth())

    # -- subscription -------------------------------------------------------------------
    def is_live(self, run_id: str) -> bool:
        """Unfinished: executing or queued, here or on another replica."""
        if run_id in self._handles:
            return True
        run = self.store.get_run(run_id)
        return run is not None and not run.done

    async def events(self, run_id: str, after: int = 0) -> AsyncIterator[StoredEvent | None]:
        """Stored events of a run after `after`, live until the run ends.

        Yields `None` when nothing happened for `keepalive_seconds` (send a keepalive).
        """
        cursor = after
        quiet = 0.0  # seconds since the last event or keepalive, for a run held elsewhere
        while True:
            handle = self._handles.get(run_id)
            waiter = self._signal(run_id).waiter()
            rows = self.store.events_after(run_id, cursor, limit=_BATCH)
            for row in rows:
                yield row
                cursor = row.seq
            if rows:
                quiet = 0.0
                continue
            if handle is None:
                # Queued, or executing on another replica: follow the store until the run
                # ends. Its last events are stored before its status, so read once more.
                run = self.store.get_run(run_id)
                if run is None or run.done:
                    if not self.store.events_after(run_id, cursor, limit=1):
                        if run_id not in self._handles:
                            self._signals.pop(run_id, None)
                        return
                    continue
            timeout = self.limits.keepalive_seconds
            if handle is None:
                timeout = min(self.replica.poll_seconds, max(0.01, timeout - quiet))
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout=timeout)
            except TimeoutError:
                quiet += timeout
                if handle is not None or quiet >= self.limits.keepalive_seconds:
                    quiet = 0.0
                    yield None
