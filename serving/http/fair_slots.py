"""Execution slots shared fairly between callers (issue 12, D9).

A plain semaphore hands every free slot to whoever queued first, so one key that submits
eight runs holds all eight slots and every other key waits behind it. `FairSlots` caps
how many slots one key holds at once; a waiting run of a key at its cap steps aside, and
the first waiting run of any other key takes the slot. Within those rules waiters are
served in arrival order.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    def __init__(self, total: int, per_key: int) -> None:
        if not 1 <= per_key <= total:
            raise ValueError(f"per_key must be between 1 and total ({total}), got {per_key}")
        self.total = total
        self.per_key = per_key
        self._held: Counter[str] = Counter()
        self._waiting: deque[tuple[str, asyncio.Future[None]]] = deque()

    @property
    def in_use(self) -> int:
        return sum(self._held.values())

    def held_by(self, key: str) -> int:
        return self._held[key]

    def _room(self, key: str) -> bool:
        return self.in_use < self.total and self._held[key] < self.per_key

    def _grant_waiters(self) -> None:
        for entry in list(self._waiting):
            key, future = entry
            if self.in_use >= self.total:
                return
            if future.done():  # cancelled while waiting
                self._waiting.remove(entry)
            elif self._held[key] < self.per_key:
                self._waiting.remove(entry)
                self._held[key] += 1
                future.set_result(None)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """One slot for `key` for the duration of the block (waits for its turn)."""
        if self._room(key):  # any waiter left behind is at its cap, or there is no slot
            self._held[key] += 1
        else:
            future = asyncio.get_running_loop().create_future()
            self._waiting.append((key, future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release(key)  # granted just as it was cancelled
                raise
        try:
            yield
        finally:
            self._release(key)

    def _release(self, key: str) -> None:
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]
        self._grant_waiters()
