"""Server-sent events: framing, event ids, and the streaming response.

Event ids are `"<seq>.<k>"`: the k-th frame rendered from stored event number `seq` of
the run. One stored event can become several frames (one per stream mode), so the
sub-index lets a client that dropped between two of them resume without a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

from fastapi.responses import StreamingResponse
from pydantic import JsonValue

from serving.http.errors import BadRequestError
from serving.http.textcheck import MAX_INT64

KEEPALIVE = b": keepalive\n\n"


def frame(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    parts = []
    if event:
        parts.append(f"event: {event}\n")
    if id is not None:
        parts.append(f"id: {id}\n")
    for line in data.split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode()


def json_frame(payload: JsonValue, *, event: str | None = None, id: str | None = None) -> bytes:
    return frame(json.dumps(payload, separators=(",", ":")), event=event, id=id)


def parse_event_id(value: str | None) -> tuple[int, int]:
    """`Last-Event-ID` -> (seq, k); (0, -1) when absent (start from the beginning)."""
    if not value:
        return 0, -1
    head, _, tail = value.partition(".")
    try:
        seq, k = int(head), int(tail) if tail else 1_000_000
        if not (0 <= seq <= MAX_INT64 and 0 <= k <= MAX_INT64):
            raise ValueError(value)
        return seq, k
    except ValueError:
        raise BadRequestError(
            f"Last-Event-ID {value!r} is not an id this server sent; send the last `id:` "
            "you received, or none to start from the beginning",
            param="Last-Event-ID",
        ) from None


class EventStreamResponse(StreamingResponse):
    """A streamed `text/event-stream` body; as a route's `response_class` it also tells
    the OpenAPI schema that the route streams events rather than returning JSON."""

    media_type = "text/event-stream"


def sse_response(
    body: AsyncIterator[bytes], headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    return EventStreamResponse(
        body,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})},
    )
