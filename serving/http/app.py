"""`create_app(settings)`: the FastAPI app, with every part built in its lifespan.

Nothing is built at import time. On startup the lifespan opens the store, builds the
retriever, model client and agent (or takes them from `components`, for tests), starts
the run manager and recovers runs a previous process left unfinished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from serving.http.auth import Authenticator
from serving.http.auth_gate import AuthGate
from serving.http.errors import install_error_handlers
from serving.http.health import ReadinessProbe
from serving.http.limits import RateLimiter, RequestBody
from serving.http.metrics import ServiceMetrics
from serving.http.openapi import install_openapi
from serving.http.research import warm_up
from serving.http.retention import Retention
from serving.http.runs import RunLimits, RunManager
from serving.http.services import Services
from serving.runtime import Components, build_components, build_store, replica_name
from serving.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, components: Callable[[Settings], Components] | None = None
) -> FastAPI:
    """Build the app; `components` replaces `build_components` (tests inject fakes here)."""
    settings.check_exposure()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = build_store(settings)
        parts = (components or build_components)(settings)
        metrics = ServiceMetrics()
        limits = RunLimits(
            max_active=settings.max_active_runs,
            max_queued=settings.max_queued_runs,
            max_per_key=settings.max_runs_per_key,
            max_active_per_key=settings.active_runs_per_key,
            keepalive_seconds=settings.sse_keepalive_seconds,
        )
        await warm_up(parts.engine)
        name = replica_name(settings)
        metrics.replica.info({"name": name, "store": store.label})
        runs = RunManager(
            store, parts.engine, metrics, limits, replica=name,
            lease_seconds=settings.lease_seconds, poll_seconds=min(1.0, settings.lease_seconds / 2),
        )  # fmt: skip
        recovered = await runs.recover(settings.recover)
        if recovered:
            log.warning("recovered %d unfinished run(s): %s", len(recovered), recovered)
        app.state.readiness = ReadinessProbe(settings, store)
        app.state.services = Services(
            settings=settings,
            store=store,
            components=parts,
            runs=runs,
            metrics=metrics,
            auth=Authenticator(
                [k.get_secret_value() for k in [*settings.api_keys, *settings.metrics_api_keys]]
            ),
            limiter=RateLimiter(settings.requests_per_minute),
            started_at=time.time(),
            recovered=recovered,
        )
        retention = Retention(store, parts.engine, settings.temporary_thread_retention_seconds)
        sweeper = asyncio.create_task(retention.run(), name="retention")
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await runs.shutdown()
            await parts.engine.aclose()
            await parts.model.aclose()
            store.close()

    app = FastAPI(
        title="thinkrag research service",
        version="0.1.0",
        lifespan=lifespan,
        description="Research questions over your documents: OpenAI-compatible, "
        "LangGraph-server-compatible and native endpoints.",
    )
    install_error_handlers(app)
    install_openapi(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "PATCH", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "x-api-key"],
            expose_headers=["Location", "Content-Location", "Retry-After"],
        )
    app.add_middleware(
        RequestBody,
        max_bytes=settings.max_request_bytes,
        timeout_seconds=settings.client_timeout_seconds,
    )
    # Outermost: the key is checked before the body is read or validated (D15).
    app.add_middleware(AuthGate, failures_per_minute=settings.failed_keys_per_minute)

    from serving.console import mount_console
    from serving.http.routes import corpus, langgraph, native, openai

    app.include_router(native.router)
    app.include_router(corpus.router)
    app.include_router(openai.router)
    app.include_router(langgraph.router)
    mount_console(app)  # the browser console at `/`, assets under /console/

    from serving.http.routes.deps import principal
    from serving.mcp.http import McpEndpoint

    mcp_endpoint = McpEndpoint(
        lambda: app.state.services, principal, host=settings.host
    )  # MCP over streamable HTTP at /mcp, behind the same keys; research via the run manager
    app.router.routes.append(mcp_endpoint.route())
    return app
