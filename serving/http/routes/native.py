"""Native endpoints: retrieval-only search, health, readiness, metrics, and plain runs.

`/v1/runs/{id}/events` is the simplest stream to read with curl: one SSE event per
stored agent event, `event:` its type, `id:` its number in the run, `data:` its JSON.
With API keys configured, a run another key started answers 404 like a missing one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from retrieval.types import SearchFilters
from serving.http.auth import Principal, key_id
from serving.http.errors import NotFoundError
from serving.http.health import shows_details
from serving.http.routes.deps import (
    principal,
    services,
    thread_id_taken,
    visible_run,
    visible_thread,
)
from serving.http.routes.views import run_out
from serving.http.run_store import RunRecord
from serving.http.runs import NewThread
from serving.http.services import Services
from serving.http.sse import KEEPALIVE, EventStreamResponse, frame, parse_event_id, sse_response
from serving.http.wire import (
    Health,
    ResearchRequest,
    RunOut,
    SearchRequest,
    SearchResponse,
)

router = APIRouter()


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> Health:
    """Liveness; with keys configured, details only for a caller with a valid key."""
    svc = services(request)
    if not shows_details(svc.settings, svc.auth, request):
        return Health(status="ok")
    return Health(status="ok", index=svc.components.index_label, model=svc.settings.model_url)


@router.get("/readyz", response_model=Health)
async def readyz(request: Request) -> JSONResponse:
    """Readiness of the model server and the database, cached for a few seconds and
    charged to the caller's address like any request."""
    svc = services(request)
    client = f"ip:{request.client.host if request.client else 'unknown'}"
    svc.limiter.check(client)
    ready = await request.app.state.readiness.check()
    status: Literal["ok", "unavailable"] = "ok" if ready.ok else "unavailable"
    body = Health(status=status)
    if shows_details(svc.settings, svc.auth, request):
        body = Health(
            status=status, index=svc.components.index_label, model=svc.settings.model_url,
            checks=ready.checks,
        )  # fmt: skip
    return JSONResponse(body.model_dump(), status_code=200 if ready.ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, who: Principal = Depends(principal)) -> Response:
    """Service-wide totals; with `metrics_api_keys` set, for those keys only (D17)."""
    svc = services(request)
    readers = {key_id(k.get_secret_value()) for k in svc.settings.metrics_api_keys}
    if readers and who.key_id not in readers:
        raise NotFoundError("there is no /metrics for this API key; ask the operator")
    svc.runs.refresh_gauges()
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4")


@router.post("/v1/search", response_model=SearchResponse, dependencies=[Depends(principal)])
async def search(body: SearchRequest, request: Request) -> SearchResponse:
    retriever = services(request).components.retriever
    filters = None
    if body.doc_ids or body.source_prefix:
        filters = SearchFilters(doc_ids=frozenset(body.doc_ids), source_prefix=body.source_prefix)
    started = time.perf_counter()
    hits = await asyncio.to_thread(retriever.search, body.query, body.k, filters)
    return SearchResponse(
        query=body.query,
        hits=hits,
        seconds=time.perf_counter() - started,
    )


@router.post("/v1/runs", response_model=RunOut, status_code=202)
async def start_run(
    body: ResearchRequest, request: Request, who: Principal = Depends(principal)
) -> RunOut:
    svc = services(request)
    thread_id = body.thread_id or str(uuid.uuid4())
    new: NewThread | None = None
    if visible_thread(svc, who, thread_id) is None:
        if svc.store.get_thread(thread_id) is not None:
            raise thread_id_taken(thread_id)
        new = NewThread(temporary=body.thread_id is None)
    run = svc.runs.submit(
        run_id=str(uuid.uuid4()), thread_id=thread_id, assistant_id="research",
        question=body.question, options=body.budget.to_options() if body.budget else None,
        metadata={}, owner=who.key_id, new_thread=new,
    )  # fmt: skip
    return run_out(run)


def _run(svc: Services, who: Principal, run_id: str) -> RunRecord:
    run = visible_run(svc, who, run_id)
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist; start one with POST /v1/runs")
    return run


@router.get("/v1/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: str, request: Request, who: Principal = Depends(principal)) -> RunOut:
    return run_out(_run(services(request), who, run_id))


@router.post("/v1/runs/{run_id}/resume", response_model=RunOut, status_code=202)
async def resume_run(run_id: str, request: Request, who: Principal = Depends(principal)) -> RunOut:
    svc = services(request)
    _run(svc, who, run_id)
    return run_out(svc.runs.resume(run_id, who.key_id))


@router.post("/v1/runs/{run_id}/cancel", response_model=RunOut)
async def cancel_run(run_id: str, request: Request, who: Principal = Depends(principal)) -> RunOut:
    svc = services(request)
    _run(svc, who, run_id)
    return run_out(await svc.runs.cancel(run_id, wait=True))


@router.get("/v1/runs/{run_id}/events", response_class=EventStreamResponse)
async def run_events(
    run_id: str,
    request: Request,
    last_event_id: str | None = Header(None),
    who: Principal = Depends(principal),
) -> Response:
    svc = services(request)
    _run(svc, who, run_id)
    after, _ = parse_event_id(last_event_id)

    async def body() -> AsyncIterator[bytes]:
        async for row in svc.runs.events(run_id, after):
            if row is None:
                yield KEEPALIVE
                continue
            if row.kind == "graph":
                continue  # LangGraph stream chunks are for the LangGraph routes
            kind = json.loads(row.data).get("type", "event") if row.kind == "service" else None
            name = kind or json.loads(row.data)["type"]
            yield frame(row.data, event=name, id=str(row.seq))
        run = svc.runs.get(run_id)
        yield frame(json.dumps({"run_id": run_id, "status": run.status}), event="end")

    return sse_response(body())
