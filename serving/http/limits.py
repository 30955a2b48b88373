"""Request protection: per-key request rate (token bucket) and the request body's size
and time caps.

Concurrent-run limits live with the runs (`serving/http/runs.py`) because only the run
manager knows when a run ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.http.errors import RateLimitedError, error_body


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` requests per key, with a burst of a quarter minute's worth."""

    def __init__(self, per_minute: int, *, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(5.0, per_minute / 4)
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def _refill(self, key: str) -> _Bucket:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:  # forget idle callers, stay bounded
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 60}
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def blocked(self, key: str) -> float | None:
        """Seconds until `key` may go again, or None if it may now (spends nothing)."""
        bucket = self._refill(key)
        return (1 - bucket.tokens) / self.rate if bucket.tokens < 1 else None

    def spend(self, key: str) -> None:
        """Charge one event to `key` (going below zero is fine: it waits longer)."""
        self._refill(key).tokens -= 1

    def check(self, key: str) -> None:
        bucket = self._refill(key)
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self.rate
            raise RateLimitedError(
                f"too many requests for this API key (limit {round(self.rate * 60)}/minute); "
                "retry after the Retry-After delay",
                retry_after=wait,
            )
        bucket.tokens -= 1


class RequestBody:
    """ASGI middleware: a request body must stay under `max_bytes` (413) and arrive
    within `timeout_seconds` (408, D14); the app then reads it from memory.

    A body is read here in full (it is at most `max_bytes`) before the app sees it, so a
    client trickling its body holds no route, no database work and no run slot: it
    holds one buffered read, until the deadline closes it. Frameworks would turn a
    failing receive into a 400, so both answers are sent from here.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def _reject(self, send: Send, status: int, type_: str, message: str) -> None:
        body = json.dumps(error_body(type_, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send: Send) -> None:
        await self._reject(
            send, 413, "payload_too_large",
            f"the request body is over the {self.max_bytes}-byte limit; send less text "
            "(or raise THINKRAG_MAX_REQUEST_BYTES on the server)",
        )  # fmt: skip

    async def _read(self, receive: Receive, send: Send) -> list[Message] | None:
        """The request's body messages, or None once a rejection has been sent."""
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._too_large(send)
                return None
            if not message.get("more_body", False):
                return messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        # The server holds a body to its declared length, so the header is enough here.
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        if declared in (None, b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body to wait for
            return
        try:
            messages = await asyncio.wait_for(self._read(receive, send), self.timeout_seconds)
        except TimeoutError:
            await self._reject(
                send, 408, "request_timeout",
                f"the request body did not arrive within {self.timeout_seconds:g} s; send it "
                "at once (or raise THINKRAG_CLIENT_TIMEOUT_SECONDS on the server)",
            )  # fmt: skip
            return
        if messages is None:
            return
        replay = iter(messages)

        async def replaying_receive() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replaying_receive, send)
