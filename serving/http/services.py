"""`Services`: what one running app holds, built by its lifespan and read by every route.

It lives apart from the app factory so routes can depend on it without importing the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.http.auth import Authenticator
from serving.http.limits import RateLimiter
from serving.http.metrics import ServiceMetrics
from serving.http.run_store import Store
from serving.http.runs import RunManager
from serving.runtime import Components
from serving.settings import Settings


@dataclass
class Services:
    settings: Settings
    store: Store
    components: Components
    runs: RunManager
    metrics: ServiceMetrics
    auth: Authenticator
    limiter: RateLimiter
    started_at: float
    recovered: list[str]
