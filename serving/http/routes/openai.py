"""OpenAI-compatible endpoints: the research agent is a "model" any OpenAI client can call.

Streaming follows vLLM: thinking in `delta.reasoning`, the answer in `delta.content`.
Tool activity appears in the reasoning as short bracketed notes, so plain chat UIs show
live progress. The final chunk (and the non-streamed message) carries the sources twice:
as a `sources` list (choice-level in chunks, message-level otherwise) and, unless
`THINKRAG_OPENAI_SOURCES_IN_CONTENT=0`, as a markdown "Sources" list appended to the
content. A client that disconnects from a stream cancels its run (there is no way to
rejoin an OpenAI stream; use the LangGraph API for that).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request, Response

from agent.events import (
    AnswerDelta,
    ReasoningDelta,
    RunError,
    RunFinished,
    Source,
    ToolCallEvent,
    parse_event,
)
from serving.http.auth import Principal
from serving.http.errors import (
    NotFoundError,
    RunFailedError,
    ServiceError,
    UnavailableError,
    error_body,
)
from serving.http.refusals import check_chat_request
from serving.http.research import compose_question
from serving.http.routes.deps import principal, services
from serving.http.services import Services
from serving.http.sse import KEEPALIVE, frame, sse_response
from serving.http.wire import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageOut,
    ChunkChoice,
    ChunkDelta,
    ModelCard,
    ModelList,
    UsageOut,
)

router = APIRouter(prefix="/v1")


@router.get("/models", response_model=ModelList, dependencies=[Depends(principal)])
async def list_models(request: Request) -> ModelList:
    svc = services(request)
    return ModelList(data=[ModelCard(id=svc.settings.assistant_name, created=int(svc.started_at))])


@router.get("/models/{model_id:path}", response_model=ModelCard, dependencies=[Depends(principal)])
async def get_model(model_id: str, request: Request) -> ModelCard:
    svc = services(request)
    if model_id != svc.settings.assistant_name:
        raise NotFoundError(
            f"model {model_id!r} does not exist here; use {svc.settings.assistant_name!r} "
            "(GET /v1/models lists it)",
            param="model",
        )
    return ModelCard(id=model_id, created=int(svc.started_at))


def sources_markdown(sources: list[Source]) -> str:
    if not sources:
        return ""
    lines = [f"[{s.number}] {s.title or s.doc_id} ({s.source})" for s in sources]
    return "\n\nSources:\n" + "\n".join(lines)


def _usage(finished: RunFinished | None) -> UsageOut:
    return UsageOut() if finished is None else UsageOut.of(finished.usage)


def _start(svc: Services, body: ChatCompletionRequest, who: Principal) -> str:
    if body.model != svc.settings.assistant_name:
        raise NotFoundError(
            f"model {body.model!r} does not exist here; use {svc.settings.assistant_name!r} "
            "(GET /v1/models lists it)",
            param="model",
        )
    check_chat_request(body)
    question = compose_question(body.turns())
    thread_id, run_id = f"chat-{uuid.uuid4()}", str(uuid.uuid4())
    svc.store.create_thread(thread_id, {"api": "openai"}, owner=who.key_id, temporary=True)
    svc.runs.submit(
        run_id=run_id, thread_id=thread_id, assistant_id="research", question=question,
        options=body.thinkrag.to_options() if body.thinkrag else None,
        metadata={"api": "openai"}, owner=who.key_id,
    )  # fmt: skip
    return run_id


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, who: Principal = Depends(principal)
) -> Response | ChatCompletion:
    svc = services(request)
    run_id = _start(svc, body, who)
    if body.stream:
        return sse_response(_stream(svc, run_id, body))
    await svc.runs.join(run_id)
    reasoning: list[str] = []
    finished: RunFinished | None = None
    failure: RunError | None = None
    async for row in svc.runs.events(run_id):
        if row is None or row.kind != "agent":
            continue
        event = parse_event(row.data)
        if isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, RunFinished):
            finished = event
        elif isinstance(event, RunError):
            failure = event
    if failure is not None and finished is None:
        raise RunFailedError(failure.kind, failure.message)
    if finished is None:
        raise UnavailableError("the research run ended without an answer; retry")
    content = finished.answer
    if svc.settings.openai_sources_in_content:
        content += sources_markdown(finished.sources)
    message = ChatMessageOut(
        content=content, reasoning="".join(reasoning) or None, sources=finished.sources
    )
    return ChatCompletion(
        id=f"chatcmpl-{run_id}",
        created=int(time.time()),
        model=body.model,
        choices=[ChatChoice(message=message, finish_reason="stop")],
        usage=_usage(finished),
    )


async def _stream(svc: Services, run_id: str, body: ChatCompletionRequest) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(delta: ChunkDelta, **kw: object) -> bytes:
        c = ChatCompletionChunk(
            id=f"chatcmpl-{run_id}", created=created, model=body.model,
            choices=[ChunkChoice(delta=delta, **kw)],  # type: ignore[arg-type]
        )  # fmt: skip
        return frame(c.model_dump_json(exclude_none=True))

    answered = False
    done = False
    try:
        yield chunk(ChunkDelta(role="assistant", content=""))
        async for row in svc.runs.events(run_id):
            if row is None:
                yield KEEPALIVE
                continue
            if row.kind != "agent":
                continue
            event = parse_event(row.data)
            if isinstance(event, ReasoningDelta):
                yield chunk(ChunkDelta(reasoning=event.text))
            elif isinstance(event, ToolCallEvent):
                yield chunk(ChunkDelta(reasoning=f"\n[{event.name} {event.arguments}]\n"))
            elif isinstance(event, AnswerDelta):
                answered = True
                yield chunk(ChunkDelta(content=event.text))
            elif isinstance(event, RunFinished):
                tail = "" if answered else event.answer
                if svc.settings.openai_sources_in_content:
                    tail += sources_markdown(event.sources)
                yield chunk(ChunkDelta(content=tail), finish_reason="stop", sources=event.sources)
                if body.stream_options and body.stream_options.include_usage:
                    usage = ChatCompletionChunk(
                        id=f"chatcmpl-{run_id}", created=created, model=body.model, choices=[],
                        usage=_usage(event),
                    )  # fmt: skip
                    yield frame(usage.model_dump_json(exclude_none=True))
            elif isinstance(event, RunError):
                yield frame(_error_json(RunFailedError(event.kind, event.message)))
        done = True
        yield frame("[DONE]")
    finally:
        if not done and svc.runs.is_live(run_id):
            asyncio.get_running_loop().create_task(svc.runs.cancel(run_id))


def _error_json(err: ServiceError) -> str:
    import json

    return json.dumps(error_body(err.type, err.message))
