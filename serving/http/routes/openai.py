"""OpenAI-compatible endpoints: the research agent is a "model" any OpenAI client can call.

Streaming follows vLLM: thinking in `delta.reasoning`, the answer in `delta.content`.
Tool activity appears in the reasoning as short bracketed notes, so plain chat UIs show
live progress. The final chunk (and the non-streamed message) carries the sources twice:
as a `sources` list (choice-level in chunks, message-level otherwise) and, unless
`THINKRAG_OPENAI_SOURCES_IN_CONTENT=0`, as a markdown "Sources" list appended to the
content. With a JSON `response_format` (json_object or json_schema) the content is the
answer restated as JSON and checked (`serving.http.answer_format`); the cited prose then
streams as reasoning and the sources travel only in `sources`. A client that disconnects
from a stream cancels its run (there is no way to rejoin an OpenAI stream; use the
LangGraph API for that). The Responses API lives in `serving.http.routes.responses`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request, Response

from agent.events import (
    AnswerDelta,
    ReasoningDelta,
    RunError,
    RunFinished,
    ToolCallEvent,
    parse_event,
)
from agent.llm.types import Usage
from serving.http.answer_format import AnswerFormat, AnswerFormatError, Shaped, shape_answer
from serving.http.auth import Principal
from serving.http.errors import (
    RunFailedError,
    ServiceError,
    UnavailableError,
    error_body,
)
from serving.http.refusals import check_chat_request
from serving.http.research import compose_question
from serving.http.response_builder import sources_markdown
from serving.http.routes import responses
from serving.http.routes.deps import check_model, principal, services
from serving.http.runs import NewThread
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
router.include_router(responses.router)


@router.get("/models", response_model=ModelList, dependencies=[Depends(principal)])
async def list_models(request: Request) -> ModelList:
    svc = services(request)
    return ModelList(data=[ModelCard(id=svc.settings.assistant_name, created=int(svc.started_at))])


@router.get("/models/{model_id:path}", response_model=ModelCard, dependencies=[Depends(principal)])
async def get_model(model_id: str, request: Request) -> ModelCard:
    svc = services(request)
    check_model(svc, model_id)
    return ModelCard(id=model_id, created=int(svc.started_at))


def _usage(finished: RunFinished | None, extra: Usage | None = None) -> UsageOut:
    if finished is None:
        return UsageOut()
    return UsageOut.of(finished.usage + extra if extra is not None else finished.usage)


def _start(svc: Services, body: ChatCompletionRequest, who: Principal) -> str:
    check_model(svc, body.model)
    check_chat_request(body)
    question = compose_question(body.turns())
    thread_id, run_id = f"chat-{uuid.uuid4()}", str(uuid.uuid4())
    svc.runs.submit(
        run_id=run_id, thread_id=thread_id, assistant_id="research", question=question,
        options=body.budget(),
        metadata={"api": "openai"}, owner=who.key_id,
        new_thread=NewThread({"api": "openai"}, temporary=True),
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
    fmt = AnswerFormat.from_chat(body.response_format)
    run_id = _start(svc, body, who)
    if body.stream:
        return sse_response(_stream(svc, run_id, body, fmt))
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
    content, extra = finished.answer, None
    if fmt is not None:
        shaped = await _shaped(svc, fmt, run_id, finished)
        content, extra = shaped.text, shaped.usage
    elif svc.settings.openai_sources_in_content:
        content += sources_markdown(finished.sources)
    message = ChatMessageOut(
        content=content, reasoning="".join(reasoning) or None, sources=finished.sources
    )
    return ChatCompletion(
        id=f"chatcmpl-{run_id}",
        created=int(time.time()),
        model=body.model,
        choices=[ChatChoice(message=message, finish_reason="stop")],
        usage=_usage(finished, extra),
    )


def _shape(
    svc: Services, fmt: AnswerFormat, run_id: str, finished: RunFinished
) -> AsyncIterator[str | Shaped]:
    run = svc.store.get_run(run_id)
    return shape_answer(
        svc.components.model, fmt, question=run.question if run else "",
        answer=finished.answer, sources=finished.sources,
    )  # fmt: skip


async def _shaped(svc: Services, fmt: AnswerFormat, run_id: str, finished: RunFinished) -> Shaped:
    async for piece in _shape(svc, fmt, run_id, finished):
        if isinstance(piece, Shaped):
            return piece
    raise AnswerFormatError("the model sent no answer to format; retry")


async def _stream(
    svc: Services, run_id: str, body: ChatCompletionRequest, fmt: AnswerFormat | None
) -> AsyncIterator[bytes]:
    """With a JSON answer format the cited prose answer streams as reasoning, and the
    content is the JSON written after it."""
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
                if fmt is not None:
                    yield chunk(ChunkDelta(reasoning=event.text))
                else:
                    yield chunk(ChunkDelta(content=event.text))
            elif isinstance(event, RunFinished):
                extra: Usage | None = None
                if fmt is not None:
                    try:
                        async for piece in _shape(svc, fmt, run_id, event):
                            if isinstance(piece, Shaped):
                                extra = piece.usage
                            else:
                                yield chunk(ChunkDelta(content=piece))
                    except ServiceError as exc:
                        yield frame(_error_json(exc))
                        break
                    tail = ""
                else:
                    tail = "" if answered else event.answer
                    if svc.settings.openai_sources_in_content:
                        tail += sources_markdown(event.sources)
                yield chunk(ChunkDelta(content=tail), finish_reason="stop", sources=event.sources)
                if body.stream_options and body.stream_options.include_usage:
                    usage = ChatCompletionChunk(
                        id=f"chatcmpl-{run_id}", created=created, model=body.model, choices=[],
                        usage=_usage(event, extra),
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
    return json.dumps(error_body(err.type, err.message, err.param))
