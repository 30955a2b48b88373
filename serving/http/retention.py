"""Retention of temporary threads (issue 12, D8).

Every chat completion, Responses call, stateless LangGraph run and `/v1/runs` without a
thread gets a thread of its own, marked temporary; nobody lists or continues them once
the client has its answer (a Responses `previous_response_id` continues one only within
the retention). Without a sweep each one stays forever (~34 KB with its events). The
sweep deletes the temporary threads idle for `temporary_thread_retention_seconds`, with
their runs, events, states and the agent's checkpoints. Kept threads are never touched.
"""

from __future__ import annotations

import asyncio
import logging
import time

from serving.http.research import ResearchEngine
from serving.http.run_store import Store

log = logging.getLogger(__name__)
_BATCH = 200


class Retention:
    def __init__(self, store: Store, engine: ResearchEngine, seconds: float) -> None:
        self.store = store
        self.engine = engine
        self.seconds = seconds
        # Sweep often enough that nothing outlives its retention by much, at most each minute.
        self.interval = min(60.0, max(0.5, seconds / 4))

    async def sweep(self, now: float | None = None) -> int:
        """Delete what has expired by `now`; returns how many threads went."""
        cutoff = (time.time() if now is None else now) - self.seconds
        deleted = 0
        while ids := self.store.expired_temporary_threads(idle_before=cutoff, limit=_BATCH):
            for thread_id in ids:
                self.store.delete_thread(thread_id)
                await self.engine.forget_thread(thread_id)
            deleted += len(ids)
            if len(ids) < _BATCH:
                break
        return deleted

    async def run(self) -> None:
        """Sweep every `interval` seconds until cancelled; a failed sweep is logged and
        tried again next time (the rows are still there)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                deleted = await self.sweep()
            except Exception:
                log.exception("temporary-thread retention sweep failed")
            else:
                if deleted:
                    log.info("deleted %d expired temporary thread(s)", deleted)
