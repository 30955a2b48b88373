"""The LangGraph-server-compatible subset, shaped so the official `langgraph-sdk` works.

One assistant (`research`). Threads hold the conversation values; runs execute in the
background and stream as SSE (`metadata` first, then frames per stream mode, `end`
last). Every frame has an id `"<seq>.<k>"`, and stream responses carry a `Location`
to rejoin, so the SDK's own reconnect (and `join_stream(last_event_id=...)`) resumes
without losing or repeating a frame. Stateless runs (`/runs/...`) use a temporary
thread that is kept unless `on_completion="delete"`.

With API keys configured, threads and runs belong to the key that created them: another
key gets the same 404 as for an id that never existed, and searches list only its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python

from serving.http.auth import Principal
from serving.http.checkpoints import checkpoint_of, thread_state_json
from serving.http.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    NotImplementedHereError,
)
from serving.http.graph_stream import GraphStreamRenderer, normalize_modes
from serving.http.refusals import check_run_create, check_thread_search
from serving.http.routes.deps import (
    ThreadIdPath,
    principal,
    services,
    thread_id_taken,
    url_path,
    visible_thread,
)
from serving.http.routes.views import iso, run_out, state_out, thread_out
from serving.http.run_store import RunRecord, ThreadRecord
from serving.http.runs import NewThread
from serving.http.services import Services
from serving.http.sse import (
    KEEPALIVE,
    EventStreamResponse,
    json_frame,
    parse_event_id,
    sse_response,
)
from serving.http.textcheck import MAX_INT64
from serving.http.wire import (
    Assistant,
    AssistantSearch,
    CheckpointRequest,
    HistoryRequest,
    JsonObject,
    RunCreate,
    RunOut,
    StateUpdate,
    ThreadCreate,
    ThreadOut,
    ThreadPatch,
    ThreadSearch,
    ThreadStateOut,
)

router = APIRouter(dependencies=[Depends(principal)])
ASSISTANT_ID = "research"
GRAPH_NODES = ("start", "plan", "prefetch", "reason", "act", "condense", "answer", "finalize")


def _assistant(svc: Services) -> Assistant:
    ts = iso(svc.started_at)
    return Assistant(
        assistant_id=ASSISTANT_ID, graph_id=ASSISTANT_ID, name=ASSISTANT_ID,
        description="Research questions over the indexed documents, with cited sources.",
        metadata={"created_by": "system"}, created_at=ts, updated_at=ts,
    )  # fmt: skip


def _check_assistant(svc: Services, assistant_id: str) -> None:
    if assistant_id not in (ASSISTANT_ID, svc.settings.assistant_name):
        raise NotFoundError(
            f"assistant {assistant_id!r} does not exist; use {ASSISTANT_ID!r}",
            param="assistant_id",
        )


@router.post("/assistants/search", response_model=list[Assistant])
async def search_assistants(body: AssistantSearch, request: Request) -> list[Assistant]:
    svc = services(request)
    if body.offset > 0 or (body.graph_id and body.graph_id != ASSISTANT_ID):
        return []
    return [_assistant(svc)]


@router.get("/ok", include_in_schema=False)
async def ok() -> JsonObject:
    """LangGraph server liveness probe (behind the API keys, like every LangGraph route)."""
    return {"ok": True, "services": {"store": "healthy"}}


@router.get("/info")
async def info(request: Request) -> JsonObject:
    """LangGraph server `/info`: what this server offers, so clients can adapt."""
    from importlib.metadata import version

    return {
        "version": request.app.version,
        "langgraph_py_version": version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False, "store": False},
        "host": {"kind": "self-hosted", "project_id": None, "revision_id": None},
    }


@router.post("/assistants/count")
async def count_assistants(body: AssistantSearch, request: Request) -> int:
    return len(await search_assistants(body.model_copy(update={"offset": 0}), request))


def _engine_method(svc: Services, name: str) -> Any:
    method = getattr(svc.components.engine, name, None)
    if method is None:
        raise NotImplementedHereError(f"this server's research engine does not offer {name}")
    return method


@router.get("/assistants/{assistant_id}/graph")
async def assistant_graph(assistant_id: str, request: Request, xray: str = "false") -> JsonObject:
    """The graph's nodes and edges (LangGraph Studio draws them)."""
    svc = services(request)
    _check_assistant(svc, assistant_id)
    drawn: JsonObject = _engine_method(svc, "graph_view")(xray=xray.lower() not in ("false", "0"))
    return drawn


@router.get("/assistants/{assistant_id}/schemas")
async def assistant_schemas(assistant_id: str, request: Request) -> JsonObject:
    """JSON schemas of the graph's input, output, state, config and context (Studio's forms)."""
    svc = services(request)
    _check_assistant(svc, assistant_id)
    return {"graph_id": ASSISTANT_ID, **_engine_method(svc, "graph_schemas")()}


@router.get("/assistants/{assistant_id}", response_model=Assistant)
async def get_assistant(assistant_id: str, request: Request) -> Assistant:
    svc = services(request)
    _check_assistant(svc, assistant_id)
    return _assistant(svc)


def _owned(svc: Services, who: Principal, thread_id: str) -> ThreadRecord:
    thread = visible_thread(svc, who, thread_id)
    if thread is None:
        raise NotFoundError(f"thread {thread_id} does not exist; create it with POST /threads")
    return thread


def _thread(svc: Services, who: Principal, thread_id: str) -> ThreadOut:
    thread = _owned(svc, who, thread_id)
    return thread_out(thread, busy=svc.store.active_runs_on_thread(thread_id) > 0)


@router.post("/threads", response_model=ThreadOut)
async def create_thread(
    body: ThreadCreate, request: Request, who: Principal = Depends(principal)
) -> ThreadOut:
    svc = services(request)
    thread_id = body.thread_id or str(uuid.uuid4())
    if (existing := svc.store.get_thread(thread_id)) is not None:
        if not who.owns(existing.owner):
            raise thread_id_taken(thread_id)
        if body.if_exists == "do_nothing":
            return _thread(svc, who, thread_id)
        raise ConflictError(
            f"thread {thread_id} already exists; pick another id or send if_exists='do_nothing'"
        )
    svc.store.create_thread(thread_id, body.metadata, owner=who.key_id)
    # A new thread has no error and no interrupts yet: the LangGraph server leaves them out.
    made = _thread(svc, who, thread_id).model_dump(exclude={"error", "interrupts"})
    return JSONResponse(made)  # type: ignore[return-value]


@router.post("/threads/search", response_model=list[ThreadOut])
async def search_threads(
    body: ThreadSearch, request: Request, who: Principal = Depends(principal)
) -> list[ThreadOut]:
    """Filters (`metadata`, `values`, `status`, `ids`) and sorting as the LangGraph server
    does them; applied here over the caller's threads, then paged."""
    svc = services(request)
    check_thread_search(body)
    filtered = any(x is not None for x in (body.metadata, body.values, body.status, body.ids))
    if not filtered and body.sort_by is None:
        found = svc.store.search_threads(owner=who.scope, limit=body.limit, offset=body.offset)
        return [thread_out(t, svc.store.active_runs_on_thread(t.thread_id) > 0) for t in found]
    every = svc.store.search_threads(owner=who.scope, limit=-1, offset=0)
    outs = [thread_out(t, svc.store.active_runs_on_thread(t.thread_id) > 0) for t in every]
    outs = [t for t in outs if _matches(t, body)]
    if body.sort_by is not None:
        key = body.sort_by
        outs.sort(key=lambda t: str(getattr(t, key)), reverse=body.sort_order != "asc")
    elif body.sort_order == "asc":
        outs.reverse()
    return outs[body.offset : body.offset + body.limit]


def _matches(thread: ThreadOut, body: ThreadSearch) -> bool:
    def holds(have: JsonObject, want: dict[str, Any] | None) -> bool:
        return want is None or all(k in have and have[k] == v for k, v in want.items())

    return (
        holds(thread.metadata, body.metadata)
        and holds(thread.values, body.values)
        and (body.status is None or thread.status == body.status)
        and (body.ids is None or thread.thread_id in body.ids)
    )


@router.post("/threads/count")
async def count_threads(
    body: ThreadSearch, request: Request, who: Principal = Depends(principal)
) -> int:
    every = body.model_copy(update={"limit": 1_000_000, "offset": 0})
    return len(await search_threads(every, request, who))


@router.get("/threads/{thread_id}", response_model=ThreadOut)
async def get_thread(
    thread_id: ThreadIdPath, request: Request, who: Principal = Depends(principal)
) -> ThreadOut:
    return _thread(services(request), who, thread_id)


@router.patch("/threads/{thread_id}", response_model=ThreadOut)
async def patch_thread(
    thread_id: ThreadIdPath,
    body: ThreadPatch,
    request: Request,
    who: Principal = Depends(principal),
) -> ThreadOut:
    """Merge new metadata into the thread's, as the LangGraph server's PATCH does."""
    svc = services(request)
    _owned(svc, who, thread_id)
    svc.store.update_thread_metadata(thread_id, body.metadata)
    return _thread(svc, who, thread_id)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(
    thread_id: ThreadIdPath, request: Request, who: Principal = Depends(principal)
) -> Response:
    svc = services(request)
    _owned(svc, who, thread_id)
    for run in svc.store.list_runs(thread_id, limit=1000, offset=0):
        if svc.runs.is_live(run.run_id):
            await svc.runs.cancel(run.run_id, wait=True)
    svc.store.delete_thread(thread_id)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/state", response_model=ThreadStateOut)
async def thread_state(
    thread_id: ThreadIdPath, request: Request, who: Principal = Depends(principal)
) -> ThreadStateOut:
    svc = services(request)
    _owned(svc, who, thread_id)
    if hasattr(svc.components.engine, "state_snapshot"):
        return JSONResponse(await _state_at(svc, thread_id, None))  # type: ignore[return-value]
    snaps = svc.store.thread_history(thread_id, limit=2)
    return state_out(
        thread_id,
        snaps[0] if snaps else None,
        snaps[1].checkpoint_id if len(snaps) > 1 else None,
    )


async def _state_at(svc: Services, thread_id: str, checkpoint_id: str | None) -> JsonObject:
    """The thread's state from the agent's checkpoints (latest, or at `checkpoint_id`)."""
    snap = await _engine_method(svc, "state_snapshot")(thread_id, checkpoint_id)
    if snap is None:
        if checkpoint_id is not None:
            raise NotFoundError(f"checkpoint {checkpoint_id} does not exist on thread {thread_id}")
        empty: JsonObject = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None}
        return {
            "values": {}, "next": [], "tasks": [], "metadata": {}, "created_at": None,
            "checkpoint": empty, "parent_checkpoint": None, "interrupts": [],
            "checkpoint_id": None, "parent_checkpoint_id": None,
        }  # fmt: skip
    return thread_state_json(snap)


def _checkpoint_id(value: JsonObject | str | None) -> str | None:
    if isinstance(value, dict):
        found = value.get("checkpoint_id")
        return str(found) if found else None
    return value


async def _history(
    svc: Services, who: Principal, thread_id: str, limit: int, before: str | None = None
) -> list[ThreadStateOut]:
    _owned(svc, who, thread_id)
    if hasattr(svc.components.engine, "state_history"):
        snaps = await svc.components.engine.state_history(thread_id, limit=limit, before=before)
        return JSONResponse([thread_state_json(s) for s in snaps])  # type: ignore[return-value]
    rows = svc.store.thread_history(thread_id, limit=limit + 1)
    return [
        state_out(thread_id, snap, rows[i + 1].checkpoint_id if i + 1 < len(rows) else None)
        for i, snap in enumerate(rows[:limit])
    ]


@router.get("/threads/{thread_id}/state/{checkpoint_id}", response_model=ThreadStateOut)
async def thread_state_at(
    thread_id: ThreadIdPath,
    checkpoint_id: str,
    request: Request,
    who: Principal = Depends(principal),
) -> JSONResponse:
    svc = services(request)
    _owned(svc, who, thread_id)
    return JSONResponse(await _state_at(svc, thread_id, checkpoint_id))


@router.post("/threads/{thread_id}/state/checkpoint", response_model=ThreadStateOut)
async def thread_state_at_checkpoint(
    thread_id: ThreadIdPath,
    body: CheckpointRequest,
    request: Request,
    who: Principal = Depends(principal),
) -> JSONResponse:
    """The state at a checkpoint object (what `RemoteGraph.aget_state` asks for)."""
    svc = services(request)
    _owned(svc, who, thread_id)
    return JSONResponse(await _state_at(svc, thread_id, _checkpoint_id(body.checkpoint)))


@router.post("/threads/{thread_id}/state")
async def update_thread_state(
    thread_id: ThreadIdPath,
    body: StateUpdate,
    request: Request,
    who: Principal = Depends(principal),
) -> JsonObject:
    """Write values as if `as_node` had returned them: a new checkpoint on the thread."""
    svc = services(request)
    _owned(svc, who, thread_id)
    if svc.store.active_runs_on_thread(thread_id):
        raise ConflictError(f"thread {thread_id} has a run in progress; update it afterwards")
    if body.as_node is not None and body.as_node not in GRAPH_NODES:
        raise BadRequestError(
            f"as_node {body.as_node!r} is not a node of this graph; use one of "
            f"{', '.join(GRAPH_NODES)}",
            param="as_node",
        )
    at = body.checkpoint_id or _checkpoint_id(body.checkpoint)
    values = body.values if isinstance(body.values, dict) or body.values is None else None
    try:
        config = await _engine_method(svc, "update_state")(
            thread_id, values, as_node=body.as_node, checkpoint_id=at
        )
    except (ValueError, KeyError) as exc:
        raise BadRequestError(f"cannot update the thread's state: {exc}", param="values") from None
    snap = await _state_at(svc, thread_id, None)
    svc.store.save_thread_state(thread_id, str(snap["checkpoint_id"]), snap["values"])  # type: ignore[arg-type]
    conf = config.get("configurable", {})
    return {
        "checkpoint": checkpoint_of(config),
        "configurable": to_jsonable_python(conf),
        "checkpoint_id": conf.get("checkpoint_id"),
    }


@router.get("/threads/{thread_id}/history", response_model=list[ThreadStateOut])
async def thread_history(
    thread_id: ThreadIdPath,
    request: Request,
    limit: int = Query(10, ge=1, le=1000),
    who: Principal = Depends(principal),
) -> list[ThreadStateOut]:
    return await _history(services(request), who, thread_id, limit)


@router.post("/threads/{thread_id}/history", response_model=list[ThreadStateOut])
async def thread_history_post(
    thread_id: ThreadIdPath,
    request: Request,
    body: HistoryRequest | None = None,
    who: Principal = Depends(principal),
) -> list[ThreadStateOut]:
    """The SDK's `get_history` POSTs its options; an empty body means the defaults."""
    limit, before = (body.limit, _checkpoint_id(body.before)) if body else (10, None)
    return await _history(services(request), who, thread_id, limit, before)


# -- runs ---------------------------------------------------------------------------------
def _create(
    svc: Services, body: RunCreate, who: Principal, thread_id: str | None
) -> tuple[RunRecord, list[str]]:
    _check_assistant(svc, body.assistant_id)
    check_run_create(body)
    modes = normalize_modes(body.stream_mode)
    question = body.question()
    new: NewThread | None = None  # created by submit once the run is admitted
    if thread_id is None:
        thread_id = str(uuid.uuid4())
        new = NewThread({"stateless": True}, temporary=True)
    elif visible_thread(svc, who, thread_id) is None:
        if body.if_not_exists != "create":
            raise NotFoundError(
                f"thread {thread_id} does not exist; create it first or send if_not_exists='create'"
            )
        if svc.store.get_thread(thread_id) is not None:
            raise thread_id_taken(thread_id)
        new = NewThread()
    run = svc.runs.submit(
        run_id=str(uuid.uuid4()), thread_id=thread_id, assistant_id=ASSISTANT_ID,
        question=question, options=body.budget().to_options(), metadata=body.metadata,
        owner=who.key_id, allow_queue_on_thread=body.multitask_strategy == "enqueue",
        stream_modes=modes, new_thread=new,
    )  # fmt: skip
    return run, modes


def _run_paths(run: RunRecord) -> dict[str, str]:
    base = url_path("threads", run.thread_id, "runs", run.run_id)
    return {"Content-Location": base, "Location": base + "/stream"}


def _get_run(svc: Services, who: Principal, thread_id: str, run_id: str) -> RunRecord:
    _owned(svc, who, thread_id)
    run = svc.store.get_run(run_id)
    if run is None or run.thread_id != thread_id or not who.owns(run.owner):
        raise NotFoundError(f"run {run_id} does not exist on thread {thread_id}")
    return run


async def _frames(
    svc: Services, run: RunRecord, modes: list[str], cursor: tuple[int, int], cancel: bool
) -> AsyncIterator[bytes]:
    seq0, k0 = cursor
    ended = False
    try:
        if (seq0, k0) < (0, 0):
            yield json_frame({"run_id": run.run_id, "attempt": 1}, event="metadata", id="0.0")
        renderer = GraphStreamRenderer(modes=modes)
        async for row in svc.runs.events(run.run_id):
            if row is None:
                yield KEEPALIVE
                continue
            for k, (event, data) in enumerate(renderer.render(row)):
                if (row.seq, k) > (seq0, k0):
                    yield json_frame(data, event=event, id=f"{row.seq}.{k}")
        final = svc.store.get_run(run.run_id) or run
        ended = True
        yield json_frame({"run_id": run.run_id, "status": final.status}, event="end")
    finally:
        if cancel and not ended and svc.runs.is_live(run.run_id):
            asyncio.get_running_loop().create_task(svc.runs.cancel(run.run_id))


async def _result(svc: Services, run: RunRecord) -> JsonObject:
    done = await svc.runs.join(run.run_id)
    if done.status == "success":
        # The graph state the run ended with, from the agent's checkpoints while it is the
        # thread's latest run; the values stored with the run otherwise.
        if hasattr(svc.components.engine, "state_snapshot"):
            latest = await _state_at(svc, run.thread_id, None)
            values = latest["values"]
            if isinstance(values, dict) and values.get("run_id") == run.run_id:
                return values
        snap = svc.store.get_snapshot(run.thread_id, run.run_id)
        return snap.state if snap else {}
    kind, _, message = (done.error or "error: the run failed").partition(": ")
    return {"__error__": {"error": kind, "message": message or kind}}


@router.post("/threads/{thread_id}/runs", response_model=RunOut)
async def create_run(
    thread_id: ThreadIdPath, body: RunCreate, request: Request, who: Principal = Depends(principal)
) -> JSONResponse:
    run, _ = _create(services(request), body, who, thread_id)
    return JSONResponse(run_out(run).model_dump(), headers=_run_paths(run))


@router.post("/runs", response_model=RunOut)
async def create_stateless_run(
    body: RunCreate, request: Request, who: Principal = Depends(principal)
) -> JSONResponse:
    run, _ = _create(services(request), body, who, None)
    return JSONResponse(run_out(run).model_dump(), headers=_run_paths(run))


@router.post("/threads/{thread_id}/runs/stream", response_class=EventStreamResponse)
async def stream_run(
    thread_id: ThreadIdPath, body: RunCreate, request: Request, who: Principal = Depends(principal)
) -> Response:
    svc = services(request)
    run, modes = _create(svc, body, who, thread_id)
    cancel = body.on_disconnect == "cancel"
    return sse_response(_frames(svc, run, modes, (0, -1), cancel), headers=_run_paths(run))


@router.post("/runs/stream", response_class=EventStreamResponse)
async def stream_stateless_run(
    body: RunCreate, request: Request, who: Principal = Depends(principal)
) -> Response:
    svc = services(request)
    run, modes = _create(svc, body, who, None)
    stream = _frames(svc, run, modes, (0, -1), body.on_disconnect == "cancel")
    return sse_response(_finalize(svc, run, body, stream), headers=_run_paths(run))


async def _finalize(
    svc: Services, run: RunRecord, body: RunCreate, stream: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk
    if body.on_completion == "delete":
        svc.store.delete_thread(run.thread_id)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(
    thread_id: ThreadIdPath, body: RunCreate, request: Request, who: Principal = Depends(principal)
) -> JSONResponse:
    svc = services(request)
    run, _ = _create(svc, body, who, thread_id)
    headers = {"Content-Location": _run_paths(run)["Content-Location"]}
    return JSONResponse(await _result(svc, run), headers=headers)


@router.post("/runs/wait")
async def wait_stateless_run(
    body: RunCreate, request: Request, who: Principal = Depends(principal)
) -> JSONResponse:
    svc = services(request)
    run, _ = _create(svc, body, who, None)
    result = await _result(svc, run)
    if body.on_completion == "delete":
        svc.store.delete_thread(run.thread_id)
    return JSONResponse(result)


@router.get("/threads/{thread_id}/runs", response_model=list[RunOut])
async def list_runs(
    thread_id: ThreadIdPath,
    request: Request,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_INT64),
    status: str | None = None,
    who: Principal = Depends(principal),
) -> list[RunOut]:
    svc = services(request)
    _owned(svc, who, thread_id)
    runs = svc.store.list_runs(
        thread_id, limit=limit, offset=offset, status=status, owner=who.scope
    )
    return [run_out(r) for r in runs]


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=RunOut)
async def get_run(
    thread_id: ThreadIdPath, run_id: str, request: Request, who: Principal = Depends(principal)
) -> RunOut:
    return run_out(_get_run(services(request), who, thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(
    thread_id: ThreadIdPath, run_id: str, request: Request, who: Principal = Depends(principal)
) -> Response:
    svc = services(request)
    _get_run(svc, who, thread_id, run_id)
    if svc.runs.is_live(run_id):
        raise ConflictError(f"run {run_id} is still executing; cancel it before deleting it")
    svc.store.delete_run(run_id)
    return Response(status_code=204)


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    response_model=RunOut,
    responses={202: {"description": "Cancellation requested (`wait=0`): no body"}},
)
async def cancel_run(
    thread_id: ThreadIdPath,
    run_id: str,
    request: Request,
    wait: int = Query(0),
    action: str = "interrupt",
    who: Principal = Depends(principal),
) -> Response:
    svc = services(request)
    _get_run(svc, who, thread_id, run_id)
    if action != "interrupt":
        raise BadRequestError(
            f"cancel action {action!r} is not supported: only 'interrupt' (stop the run, keep "
            "what it wrote); delete the run afterwards if you want it gone",
            param="action",
        )
    run = await svc.runs.cancel(run_id, wait=bool(wait))
    if wait:
        return JSONResponse(run_out(run).model_dump())
    return Response(status_code=202)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    thread_id: ThreadIdPath, run_id: str, request: Request, who: Principal = Depends(principal)
) -> JSONResponse:
    svc = services(request)
    return JSONResponse(await _result(svc, _get_run(svc, who, thread_id, run_id)))


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_class=EventStreamResponse)
async def join_stream(
    thread_id: ThreadIdPath,
    run_id: str,
    request: Request,
    stream_mode: list[str] | None = Query(None),
    cancel_on_disconnect: bool = False,
    last_event_id: str | None = Header(None),
    who: Principal = Depends(principal),
) -> Response:
    svc = services(request)
    run = _get_run(svc, who, thread_id, run_id)
    asked = [m for m in stream_mode or [] if m]  # the SDK sends `stream_mode=` for None
    modes = normalize_modes(asked or run.stream_modes or None)
    cursor = parse_event_id(last_event_id)  # a bad id is a 400 before the stream starts
    stream = _frames(svc, run, modes, cursor, cancel_on_disconnect)
    return sse_response(stream, headers=_run_paths(run))
