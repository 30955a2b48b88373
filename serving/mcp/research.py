"""How the MCP `research` tool runs the agent: a port with two implementations.

Over stdio the process serves one client, so a run is the engine's event stream in a
task of its own (`EngineRuns`). Inside the HTTP service a run goes through the service's
run manager like every other run (`serving.mcp.http.ManagedRuns`): the same admission
limits, per-key quota, durable events and cancel, so `/mcp` is no way around them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from agent.config import RunOptions
from agent.events import Event

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from serving.http.research import ResearchEngine


class ResearchRun(Protocol):
    run_id: str

    def events(self) -> AsyncIterator[Event]:
        """The run's events from its first, ending after its last."""
        ...

    async def cancel(self) -> None:
        """Stop the run (the client cancelled the call); returns once it has stopped."""
        ...


class ResearchRuns(Protocol):
    async def start(self, question: str, options: RunOptions | None, ctx: Context) -> ResearchRun:
        """Admit and start a run for the caller of `ctx`; raises `McpToolError` when the
        run cannot be admitted (the message says why and when to retry)."""
        ...


class _EngineRun:
    """The engine's stream pumped by a plain asyncio task. The SDK cancels a handler
    through an anyio scope, which re-cancels every await of LangGraph's clean-up; a
    plain task cancel lets the run unwind (and drop its model request) as the service's
    run manager does."""

    def __init__(self, run_id: str, events: AsyncIterator[Event]) -> None:
        self.run_id = run_id
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._pump(events))

    async def _pump(self, events: AsyncIterator[Event]) -> None:
        try:
            async for event in events:
                self._queue.put_nowait(event)
        finally:
            self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Event]:
        while (event := await self._queue.get()) is not None:
            yield event
        await asyncio.wait({self._task})
        if not self._task.cancelled() and (failure := self._task.exception()) is not None:
            raise failure

    async def cancel(self) -> None:
        self._task.cancel()
        await asyncio.wait({self._task})


class EngineRuns:
    """Runs straight on the engine, for `thinkrag mcp` over stdio (one client)."""

    def __init__(self, engine: ResearchEngine) -> None:
        self.engine = engine

    async def start(self, question: str, options: RunOptions | None, ctx: Context) -> _EngineRun:
        run_id = uuid.uuid4().hex
        events = self.engine.run(
            question, thread_id=f"mcp-{run_id}", run_id=run_id, options=options
        )
        return _EngineRun(run_id, events)
