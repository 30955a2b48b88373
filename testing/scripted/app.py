"""The FastAPI app behind `ScriptedModelServer`: renders scripted turns as vLLM 0.32 bytes.

Shapes follow vLLM's OpenAI server: `message.reasoning` (or the legacy `reasoning_content`),
tool calls with `call_` ids streamed as an opening piece (id, type, name) then argument
fragments, `stop_reason` next to `finish_reason`, a usage-only final chunk when
`stream_options.include_usage` is set, and `data: [DONE]` at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from testing.scripted.wire import (
    Render,
    chat_body,
    chat_events,
    completion_events,
    completion_outcome,
    prompt_text,
    token_ids,
)

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from testing.scripted.script import ScriptedTurn, ScriptHost, ScriptRequest


def _error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    err_type = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}
    body = {
        "error": {
            "message": message,
            "type": err_type.get(status, "InternalServerError"),
            "param": None,
            "code": status,
        }
    }
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


class _SSEResponse(Response):
    """Streams SSE events while watching for the client hanging up (recorded on the request)."""

    def __init__(self, server: ScriptHost, req: ScriptRequest, events: AsyncIterator[str]) -> None:
        super().__init__(media_type="text/event-stream")
        self._server = server
        self._req = req
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def pump() -> None:
            async for event in self._events:
                await send(
                    {"type": "http.response.body", "body": event.encode(), "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pump_task = asyncio.ensure_future(pump())
        watch_task = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pump_task.done():
                pump_task.cancel()
                self._server.mark_disconnected(self._req)
            watch_task.cancel()
            # Let the cancellations land: a task asked to cancel is not done yet, and
            # reading its outcome before it is raises InvalidStateError.
            await asyncio.gather(pump_task, watch_task, return_exceptions=True)
        exc = None if pump_task.cancelled() else pump_task.exception()
        if isinstance(exc, OSError) or type(exc).__name__ == "ClientDisconnect":
            self._server.mark_disconnected(self._req)
        elif exc is not None:
            raise exc  # an injected cut: uvicorn drops the connection mid-body
        elif not pump_task.cancelled():
            self._server.mark_completed(self._req)


class _StreamCut(Exception):
    """Raised inside a stream to drop the connection mid-body (cut_stream_after_chunks)."""


def build_app(server: ScriptHost) -> FastAPI:
    app = FastAPI(title="thinkrag scripted model", openapi_url=None)

    async def begin(request: Request, endpoint: str) -> tuple[ScriptRequest, Any]:
        body = await request.json()
        req = server.record(endpoint, body)
        if body.get("model") not in (None, server.model):
            return req, _error(404, f"The model `{body['model']}` does not exist.")
        try:
            turn = server.next_turn(req)
        except Exception as exc:  # a broken script must reach the test as a clear 500
            return req, _error(500, str(exc))
        if turn.status is not None and turn.status >= 400:
            return req, _error(turn.status, turn.error_message, turn.retry_after)
        return req, turn

    async def delay(turn: ScriptedTurn) -> None:
        step = server.latency if turn.latency is None else turn.latency
        if step > 0:
            await asyncio.sleep(step)

    async def paced(events: Iterator[str], turn: ScriptedTurn) -> AsyncIterator[str]:
        if turn.first_byte_delay > 0:
            await asyncio.sleep(turn.first_byte_delay)
        for n, event in enumerate(events):
            if turn.cut_stream_after_chunks is not None and n >= turn.cut_stream_after_chunks:
                raise _StreamCut("scripted stream cut")
            await delay(turn)
            yield event

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {
            "id": server.model,
            "object": "model",
            "created": 0,
            "owned_by": "thinkrag",
            "root": server.model,
            "parent": None,
            "max_model_len": 4096,
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        req, turn = await begin(request, "/v1/chat/completions")
        if isinstance(turn, Response):
            return turn
        r = Render(server, turn, req.body)
        if req.body.get("stream"):
            return _SSEResponse(server, req, paced(chat_events(r, server.chunk_chars), turn))
        if turn.first_byte_delay > 0:
            await asyncio.sleep(turn.first_byte_delay)
        await delay(turn)
        server.mark_completed(req)
        return JSONResponse(chat_body(r))

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        req, turn = await begin(request, "/v1/completions")
        if isinstance(turn, Response):
            return turn
        r = Render(server, turn, req.body)
        if req.body.get("stream"):
            return _SSEResponse(server, req, paced(completion_events(r, server.chunk_chars), turn))
        if turn.first_byte_delay > 0:
            await asyncio.sleep(turn.first_byte_delay)
        await delay(turn)
        server.mark_completed(req)
        text, stop_reason, finish = completion_outcome(r)
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": finish,
            "stop_reason": stop_reason,
            "prompt_logprobs": None,
        }
        return JSONResponse(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": r.created,
                "model": r.model,
                "choices": [choice],
                "usage": r.usage("", text),
            }
        )

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        body = await request.json()
        server.record("/tokenize", body)
        ids = token_ids(prompt_text(body))
        return {"count": len(ids), "max_model_len": 4096, "tokens": ids, "token_strs": None}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        c, m = server.counters, server.model
        lines = [
            "# TYPE vllm:prompt_tokens_total counter",
            f'vllm:prompt_tokens_total{{model_name="{m}"}} {float(c.prompt_tokens)}',
            "# TYPE vllm:generation_tokens_total counter",
            f'vllm:generation_tokens_total{{model_name="{m}"}} {float(c.generation_tokens)}',
            "# TYPE vllm:prefix_cache_hits_total counter",
            f'vllm:prefix_cache_hits_total{{model_name="{m}"}} {float(c.cache_hits)}',
        ]
        return PlainTextResponse("\n".join(lines) + "\n")

    return app
