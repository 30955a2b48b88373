"""What makes a process one replica among several over a shared store.

Three background tasks, started by the run manager's `recover()`:

- the claimer takes runs no live replica holds (new ones queued behind another run on
  their thread, those a replica left on shutdown, those of a replica that died and whose
  lease ran out), up to the room this replica has, and hands them to the manager;
- the renewer extends this replica's leases every third of the lease, and reports the
  runs it lost (another replica took them over: stop without writing) and the runs a
  client asked to cancel through another replica;
- the listener turns the store's notices (Postgres `LISTEN/NOTIFY`) into wake-ups: new
  events wake live tails of runs executing elsewhere, cancel requests reach the
  executor at once, queued runs wake the claimer. Each also has a timer, so a lost
  notice costs a poll interval, never a run or an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Protocol

from serving.http.run_store import RunRecord, Store

log = logging.getLogger(__name__)


class Executor(Protocol):
    """The run manager, as the replica tasks see it."""

    def room(self) -> int:
        """How many more runs this replica may hold (executing or waiting for a slot)."""
        ...

    def adopt(self, run: RunRecord) -> None:
        """Execute (or resume) a run this replica just claimed."""
        ...

    def held(self) -> list[str]: ...
    def lost(self, run_ids: Iterable[str]) -> None: ...
    def cancel_here(self, run_id: str) -> None: ...
    def woken(self, run_id: str) -> None:
        """New events of `run_id` were stored (by any replica)."""
        ...


class Replica:
    def __init__(
        self,
        store: Store,
        executor: Executor,
        *,
        name: str,
        lease_seconds: float,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.executor = executor
        self.name = name
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        for loop in (self._claim_loop, self._renew_loop, self._listen):
            self._tasks.append(asyncio.create_task(loop(), name=f"replica-{loop.__name__}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def wake(self) -> None:
        """Look for claimable runs now (a run here ended, or one was queued)."""
        self._wake.set()

    def claim(self, run_id: str | None = None) -> list[RunRecord]:
        """Claim what fits (or that one run) and hand it to the executor; the claimed runs."""
        room = self.executor.room()
        if room <= 0:
            return []
        runs = self.store.claim_runs(self.name, room, self.lease_seconds, run_id=run_id)
        for run in runs:
            self.executor.adopt(run)
        return runs

    async def _claim_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()
            try:
                self.claim()
            except Exception:  # the database is away: try again on the next tick
                log.exception("claiming runs failed")

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            held = self.executor.held()
            if not held:
                continue
            try:
                report = self.store.renew_leases(self.name, held, self.lease_seconds)
            except Exception:
                log.exception("renewing %d lease(s) failed", len(held))
                continue
            if report.lost:
                log.warning("another replica took over run(s) %s", sorted(report.lost))
                self.executor.lost(report.lost)
            for run_id in report.cancel:
                self.executor.cancel_here(run_id)

    async def _listen(self) -> None:
        async for kind, run_id in self.store.notices():
            if kind == "events":
                self.executor.woken(run_id)
            elif kind == "cancel":
                if run_id in self.executor.held():
                    self.executor.cancel_here(run_id)
            else:
                self.wake()
