"""What the health probes show and how often they touch the model server (issue 12, D15).

Probes stay open (load balancers send no key), so they must not leak or amplify:
- with API keys configured, an anonymous probe sees only the status; the index path,
  the model URL and the per-check messages are for callers with a valid key (or for
  everyone with `public_health_details`);
- `/readyz` asks the model server and the database at most once per
  `readyz_cache_seconds` and serves the cached answer in between, so a flood of probes
  is never a flood of model-server requests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.requests import Request

from serving.http.auth import Authenticator
from serving.http.errors import UnauthorizedError
from serving.http.run_store import Store
from serving.runtime import check_model
from serving.settings import Settings


def shows_details(settings: Settings, auth: Authenticator, request: Request) -> bool:
    """Whether this probe may see paths, URLs and check messages."""
    if not auth.enabled or settings.public_health_details:
        return True
    if auth.presented_key(request) is None:
        return False
    try:
        auth.authenticate(request)
    except UnauthorizedError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Readiness:
    ok: bool
    checks: dict[str, str]


class ReadinessProbe:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._last: tuple[float, Readiness] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> Readiness:
        """The cached answer while it is fresh; otherwise one probe (concurrent callers
        wait for it instead of each probing)."""
        async with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self.settings.readyz_cache_seconds:
                return self._last[1]
            problem = await check_model(self.settings, timeout=3.0)
            database = self.store.ping()
            checks = {"index": "ok", "model": problem or "ok", "database": database or "ok"}
            checks["store"] = self.store.label
            result = Readiness(ok=not (problem or database), checks=checks)
            self._last = (time.monotonic(), result)
            return result
