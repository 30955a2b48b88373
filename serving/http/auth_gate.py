"""The API-key gate in front of everything (issue 12, D15).

Checked per route, the key came after the framework had read and validated the body, so
a caller without a key could learn the schema from 422s and make the server parse
megabytes. As the outermost middleware the gate answers 401 before any byte of the body
is read, and it limits failed attempts per client address: after a burst of wrong keys
that client gets 429 until its bucket refills, whatever it sends.

Open without a key: the health probes, the console's static files and the API docs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http.errors import RateLimitedError, ServiceError, error_response
from serving.http.limits import RateLimiter

CALLER = "caller"  # where the gate leaves the authenticated Principal in the scope state
_OPEN = frozenset({"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/favicon.ico"})
_OPEN_PREFIXES = ("/console/", "/docs/")


def is_open(path: str) -> bool:
    return path in _OPEN or path.startswith(_OPEN_PREFIXES)


class AuthGate:
    def __init__(self, app: ASGIApp, failures_per_minute: int) -> None:
        self.app = app
        self.failures = RateLimiter(failures_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if scope["type"] != "http" or is_open(scope["path"]) or services is None:
            await self.app(scope, receive, send)
            return
        if not services.auth.enabled:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        client = f"ip:{request.client.host if request.client else 'unknown'}"
        try:
            wait = self.failures.blocked(client)
            if wait is not None:
                services.metrics.rejected.labels(reason="failed_keys").inc()
                raise RateLimitedError(
                    "too many requests with a wrong API key from this address; retry after "
                    "the Retry-After delay with a valid key",
                    retry_after=wait,
                )
            try:
                who = services.auth.authenticate(request)
            except ServiceError:
                self.failures.spend(client)
                raise
        except ServiceError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER] = who
        await self.app(scope, receive, send)
