"""The OpenAI Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

Each response is one research run on a thread. `previous_response_id` naming the
thread's newest response continues that thread in place (the agent sees the earlier
turns and keeps its citation numbers); naming an older one forks: a new thread starts
with the conversation up to that response as context, as OpenAI branches. The response
row and the run's events are in the service store, so a response can be read, and
continued, after a restart. `store=false` responses run the same but cannot be read or
continued. A streamed response whose client disconnects cancels its run, as on the chat
route. Parameters we cannot honour are refused by name (`check_response_create`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from agent.events import RunFinished, parse_event
from serving.http.answer_format import AnswerFormat, Shaped, shape_answer
from serving.http.auth import Principal
from serving.http.errors import NotFoundError, RunFailedError, ServiceError
from serving.http.refusals import check_response_create
from serving.http.research import compose_question
from serving.http.response_builder import ResponseBuilder
from serving.http.responses_wire import (
    DeletedResponse,
    InputItemList,
    InputMessageOut,
    InputText,
    MessageItem,
    ResponseCreate,
    ResponseObject,
    StoredRequest,
    TextFormat,
)
from serving.http.routes.deps import check_model, principal, services
from serving.http.run_store import JsonObject, ResponseRecord
from serving.http.runs import NewThread
from serving.http.services import Services
from serving.http.sse import KEEPALIVE, json_frame, sse_response

router = APIRouter()
API = "openai.responses"
SHAPE_GRACE_SECONDS = 300.0


def _visible(svc: Services, who: Principal, response_id: str, param: str | None) -> ResponseRecord:
    record = svc.store.get_response(response_id)
    if record is None or not record.stored or not who.owns(record.owner):
        raise NotFoundError(
            f"response {response_id!r} does not exist here (responses created with "
            "store=false are not kept); send an id a POST /v1/responses returned",
            param=param,
        )
    return record


def _chain(svc: Services, record: ResponseRecord) -> list[tuple[str, str]]:
    """The conversation up to and including `record`: each response's input, then its answer."""
    records = [record]
    while (parent := records[-1].previous_response_id) and len(records) < 100:
        found = svc.store.get_response(parent)
        if found is None:
            break
        records.append(found)
    turns: list[tuple[str, str]] = []
    for r in reversed(records):
        req = StoredRequest.model_validate(r.request)
        turns += req.turns[1:] if req.instructions else req.turns  # instructions do not carry
        turns.append(("assistant", _answer_text(svc, r)))
    return turns


def _answer_text(svc: Services, record: ResponseRecord) -> str:
    """The response's answer: from its stored object, else from its run's final event."""
    if record.output is not None:
        items = ResponseObject.model_validate(record.output).output
        return "".join(
            p.text for item in items if isinstance(item, MessageItem) for p in item.content
        )
    cursor, answer = 0, ""
    while batch := svc.store.events_after(record.run_id, cursor, limit=256):
        for row in batch:
            if row.kind == "agent" and '"run_finished"' in row.data:
                event = parse_event(row.data)
                answer = event.answer if isinstance(event, RunFinished) else answer
            cursor = row.seq
    return answer


def _builder(svc: Services, record: ResponseRecord) -> ResponseBuilder:
    req = StoredRequest.model_validate(record.request)
    fmt = req.format.model_dump(by_alias=True, exclude_none=True) if req.format else None
    reasoning = req.reasoning.model_dump(exclude_none=True) if req.reasoning else None
    base = ResponseObject(
        id=record.response_id, created_at=record.created_at, model=req.model,
        instructions=req.instructions, previous_response_id=record.previous_response_id,
        metadata=req.metadata, temperature=req.temperature, top_p=req.top_p,
        reasoning=reasoning, text={"format": fmt or {"type": "text"}},
        tool_choice=req.tool_choice, store=record.stored,
        truncation=req.truncation or "disabled", thread_id=record.thread_id,
    )  # fmt: skip
    return ResponseBuilder(
        base,
        summary=bool(req.reasoning and req.reasoning.wants_summary),
        shaped=_format(req.format) is not None,
        sources_in_content=svc.settings.openai_sources_in_content,
    )


def _format(fmt: TextFormat | None) -> AnswerFormat | None:
    if fmt is None:
        return None
    return AnswerFormat.parse(
        fmt.type, name=fmt.name, schema=fmt.schema_, strict=fmt.strict, param="text.format"
    )


def _start(svc: Services, body: ResponseCreate, who: Principal) -> ResponseRecord:
    check_model(svc, body.model)
    check_response_create(body)
    _format(body.text.format if body.text else None)  # a bad schema is refused before the run
    turns = body.turns()
    previous = None
    if body.previous_response_id:
        previous = _visible(svc, who, body.previous_response_id, "previous_response_id")
    new_thread: NewThread | None = None
    if (
        previous is not None
        and svc.store.latest_response_on_thread(previous.thread_id) == previous.response_id
        and svc.store.get_thread(previous.thread_id) is not None
    ):
        thread_id, question = previous.thread_id, compose_question(turns)
    else:
        context = _chain(svc, previous) if previous is not None else []
        thread_id, question = f"resp-{uuid.uuid4()}", compose_question([*context, *turns])
        new_thread = NewThread({"api": API}, temporary=True)  # made once the run is admitted
    response_id, run_id = f"resp_{uuid.uuid4().hex}", str(uuid.uuid4())
    svc.runs.submit(
        run_id=run_id, thread_id=thread_id, assistant_id="research", question=question,
        options=body.budget(), metadata={"api": API, "response_id": response_id},
        owner=who.key_id, allow_queue_on_thread=True, new_thread=new_thread,
    )  # fmt: skip
    record = ResponseRecord(
        response_id=response_id, thread_id=thread_id, run_id=run_id, owner=who.key_id,
        previous_response_id=body.previous_response_id, created_at=time.time(),
        request=StoredRequest.of(body, turns).model_dump(mode="json", by_alias=True),
        output=None, stored=body.store,
    )  # fmt: skip
    svc.store.create_response(record)
    return record


@router.post(
    "/responses",
    response_model=ResponseObject,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def create_response(
    body: ResponseCreate, request: Request, who: Principal = Depends(principal)
) -> Response | ResponseObject:
    svc = services(request)
    record = _start(svc, body, who)
    if body.stream:
        return sse_response(_stream(svc, record))
    await svc.runs.join(record.run_id)
    builder = _builder(svc, record)
    async for _ in _fold(svc, record, builder, raise_errors=True):
        pass
    if builder.failure is not None:
        raise RunFailedError(builder.failure.kind, builder.failure.message)
    return builder.response


async def _fold(
    svc: Services, record: ResponseRecord, builder: ResponseBuilder, *, raise_errors: bool = False
) -> AsyncIterator[JsonObject | None]:
    """Stream events of the response (None: nothing new for a while); the last state is
    stored as the response's output. A failure to write the JSON answer ends the response
    as failed, and is raised too when `raise_errors` (the non-streamed answer is an error)."""
    try:
        for event in builder.start():
            yield event
        async for row in svc.runs.events(record.run_id):
            if row is None:
                yield None
                continue
            if row.kind != "agent":
                continue
            for event in builder.feed(parse_event(row.data)):
                yield event
        fmt = _format(StoredRequest.model_validate(record.request).format)
        if fmt is not None and builder.finished is not None and builder.failure is None:
            run = svc.store.get_run(record.run_id)
            try:
                async for piece in shape_answer(
                    svc.components.model, fmt, question=run.question if run else "",
                    answer=builder.finished.answer, sources=builder.finished.sources,
                ):  # fmt: skip
                    events = (
                        builder.shaped_done(piece.text, piece.usage)
                        if isinstance(piece, Shaped)
                        else builder.shaped_delta(piece)
                    )
                    for event in events:
                        yield event
            except ServiceError as exc:
                for event in builder.fail(exc.type, exc.message):
                    yield event
                if raise_errors:
                    raise
        if builder.response.status == "in_progress":
            for event in builder.fail("internal_error", "the run ended without an answer; retry"):
                yield event
    finally:
        if builder.response.status != "in_progress":
            svc.store.set_response_output(
                record.response_id, builder.response.model_dump(mode="json")
            )


async def _stream(svc: Services, record: ResponseRecord) -> AsyncIterator[bytes]:
    done = False
    try:
        async for event in _fold(svc, record, _builder(svc, record)):
            if event is None:
                yield KEEPALIVE
            else:
                yield json_frame(event, event=str(event["type"]))
        done = True
    finally:
        if not done and svc.runs.is_live(record.run_id):
            asyncio.get_running_loop().create_task(svc.runs.cancel(record.run_id))


@router.get("/responses/{response_id}", response_model=ResponseObject)
async def get_response(
    response_id: str, request: Request, who: Principal = Depends(principal)
) -> ResponseObject | JsonObject:
    svc = services(request)
    record = _visible(svc, who, response_id, None)
    if record.output is not None:
        return record.output
    builder = _builder(svc, record)
    builder.start()
    run = svc.store.get_run(record.run_id)
    async for row in _stored_events(svc, record.run_id):
        builder.feed(parse_event(row))
    # A finished run whose JSON answer is still being written by the creating request
    # stays in progress for a while; past that the writer is gone (a restart).
    ended = run is not None and run.done and builder.response.status == "in_progress"
    if ended and builder.finished is not None and run is not None:
        ended = time.time() - run.updated_at > SHAPE_GRACE_SECONDS
    if ended:
        builder.fail(
            "internal_error", "the run stopped before the response was finished; create it again"
        )
    if builder.response.status != "in_progress":
        svc.store.set_response_output(record.response_id, builder.response.model_dump(mode="json"))
    return builder.response


async def _stored_events(svc: Services, run_id: str) -> AsyncIterator[str]:
    cursor = 0
    while batch := svc.store.events_after(run_id, cursor, limit=256):
        for row in batch:
            if row.kind == "agent":
                yield row.data
            cursor = row.seq


@router.get("/responses/{response_id}/input_items", response_model=InputItemList)
async def list_input_items(
    response_id: str,
    request: Request,
    who: Principal = Depends(principal),
    limit: int = Query(20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> InputItemList:
    """The response's input messages (instructions are not input items, as on OpenAI)."""
    svc = services(request)
    record = _visible(svc, who, response_id, None)
    req = StoredRequest.model_validate(record.request)
    turns = req.turns[1:] if req.instructions else req.turns
    key = record.response_id.removeprefix("resp_")
    items = [
        InputMessageOut(id=f"msg_{key}in{i:03d}", role=role, content=[InputText(text=text)])  # type: ignore[arg-type]
        for i, (role, text) in enumerate(turns)
    ]
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item.id for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return InputItemList(
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(items) > limit,
    )


@router.delete("/responses/{response_id}", response_model=DeletedResponse)
async def delete_response(
    response_id: str, request: Request, who: Principal = Depends(principal)
) -> DeletedResponse:
    svc = services(request)
    record = _visible(svc, who, response_id, None)
    if svc.runs.is_live(record.run_id):
        await svc.runs.cancel(record.run_id, wait=True)
    svc.store.delete_response(response_id)
    return DeletedResponse(id=response_id)
