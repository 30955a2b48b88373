"""Server-sent events from an httpx streaming response, with per-phase timeouts.

The timeouts are enforced here rather than by httpx's read timeout because the allowed
silence changes mid-response: long before the first event (prefill), short between events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from agent.errors import ModelProtocolError, ModelTimeoutError


async def sse_json(
    resp: httpx.Response,
    *,
    first_deadline: float,
    between_chunks: float,
    deadline: float,
    url: str,
) -> AsyncGenerator[Any, None]:
    """Yield each event's JSON payload until `data: [DONE]`.

    Deadlines are `loop.time()` values. Raises ModelTimeoutError naming the phase that ran
    out, and ModelProtocolError for bad JSON or a stream that ends before `[DONE]`.
    """
    loop = asyncio.get_running_loop()
    chunks = resp.aiter_text()
    buffer = ""
    started = False
    while True:
        limit = first_deadline if not started else loop.time() + between_chunks
        phase = "first byte" if not started else "between chunks"
        if deadline <= limit:
            limit, phase = deadline, "total"
        try:
            async with asyncio.timeout_at(limit):
                text = await anext(chunks)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ModelTimeoutError(
                f"{url}: the '{phase}' timeout ran out while streaming; the server is "
                "overloaded or stuck; raise Timeouts."
                f"{phase.replace(' ', '_')} or check the vLLM server"
            ) from None
        except httpx.TransportError as exc:
            raise ModelProtocolError(
                f"{url}: the stream was cut mid-way ({type(exc).__name__}: {exc}); the server "
                "or a proxy dropped the connection; check the vLLM log for a crash or OOM"
            ) from exc
        started = True
        buffer += text.replace("\r\n", "\n") if "\r" in text else text
        while "\n\n" in buffer:
            event, buffer = buffer.split("\n\n", 1)
            payload = _event_data(event)
            if payload is None:
                continue
            if payload == "[DONE]":
                await _drain(chunks, loop.time() + between_chunks)
                return
            yield _loads(payload, url)
    raise ModelProtocolError(
        f"{url}: the stream ended without `data: [DONE]`; the connection was closed early "
        "(server restart or proxy timeout); retry the request"
    )


def _event_data(event: str) -> str | None:
    """The joined `data:` lines of one event; None for comments and data-less events."""
    if event.startswith("data: ") and "\n" not in event:
        return event[6:]  # the common case: one data line
    data = [line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")]
    return "\n".join(data) if data else None


async def _drain(chunks: AsyncIterator[str], limit: float) -> None:
    """Read the body to its end after [DONE] so the connection goes back to the pool
    (closing a half-read response throws the keep-alive connection away)."""
    try:
        async with asyncio.timeout_at(limit):
            async for _ in chunks:
                pass
    except (TimeoutError, httpx.TransportError):
        pass  # the data is complete; only connection reuse is lost


def _loads(payload: str, url: str) -> Any:
    try:
        return json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ModelProtocolError(
            f"{url}: an SSE event is not JSON ({exc}): {payload[:200]!r}; is base_url an "
            "OpenAI-compatible server?"
        ) from exc
