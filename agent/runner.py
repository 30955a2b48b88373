"""`ResearchAgent`: runs the graph for one question and turns it into typed events.

Events come from LangGraph's stream modes: nodes write `agent.events` objects on the
`custom` stream (reasoning deltas, tool calls and results, answer deltas, citations)
and the final result arrives on the `updates` stream. State is checkpointed to SQLite
after every step (durability "sync"), so a run killed mid-way resumes from its last
completed step, and a thread id carries a conversation across questions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from agent.config import AgentConfig, Budgets, RunOptions, resolve_budgets
from agent.errors import AgentUsageError, ModelError, run_error_kind
from agent.events import Event, GraphChunk, RunError, RunFinished, RunStarted
from agent.graph import build_graph, make_deps
from agent.llm.types import Message, ReasoningModel
from agent.postgres_checkpoints import PostgresCheckpoints
from agent.state import STATE_TYPES, RunResult
from agent.tools.base import Tool
from agent.tools.journal import SqliteToolJournal, ToolJournal
from retrieval.types import Retriever

log = logging.getLogger(__name__)


def finished_event(result: RunResult) -> RunFinished:
    return RunFinished(
        run_id=result.run_id,
        step=result.steps,
        answer=result.answer,
        sources=list(result.sources),
        finalized_reason=result.finalized_reason,
        removed_citations=list(result.removed_citations),
        usage=result.usage,
        steps=result.steps,
        tool_calls=result.tool_calls,
        seconds=result.seconds,
    )


def graph_stream_modes(asked: Sequence[str]) -> list[str]:
    """The LangGraph stream modes to relay for the modes a LangGraph-API client asked for:
    the graph's own ones as they are, and its `messages` for `messages-tuple` too.
    (`custom` is always streamed: it carries the typed events every client reads.)"""
    modes = [m for m in ("values", "updates", *_ON_REQUEST) if m in asked]
    if "messages" in asked or "messages-tuple" in asked:
        modes.append("messages")
    return modes


_ON_REQUEST = ("debug", "tasks", "checkpoints")


def stored_deadline(values: Mapping[str, Any]) -> float:
    """The absolute deadline a checkpointed run started with (`time.time()` seconds)."""
    if values.get("deadline_at") is not None:
        return float(values["deadline_at"])
    # Checkpoints written before the deadline was stored: rebuild it from the start time.
    budgets: Budgets = values["budgets"]
    started = values.get("started_at")
    return (time.time() if started is None else float(started)) + budgets.deadline_seconds


class ResearchAgent:
    """One agent (model + retriever + config) serving many threads.

    `checkpoint_path=None` keeps checkpoints in an in-memory SQLite database (same code
    path, nothing survives the process). Once a run finishes, its intermediate checkpoints
    are dropped (only the thread's latest state is kept, which is all follow-ups and
    `thread_history` need) unless `keep_checkpoint_history=True`: idle threads then cost
    one state, not one per step.
    """

    def __init__(
        self,
        model: ReasoningModel,
        retriever: Retriever,
        config: AgentConfig,
        *,
        checkpoint_path: Path | None = None,
        checkpoint_url: str | None = None,
        tools: Sequence[Tool] | None = None,
        keep_checkpoint_history: bool = False,
    ) -> None:
        self.model = model
        self.retriever = retriever
        self.config = config
        self.checkpoint_path = checkpoint_path
        self.checkpoint_url = checkpoint_url  # postgresql://...: checkpoints in Postgres
        self._deps = make_deps(model, retriever, config, tools)
        self.keep_checkpoint_history = keep_checkpoint_history
        self._graph: Any = None
        self._conn: Any = None
        self._saver: Any = None
        self._postgres: PostgresCheckpoints | None = None
        self._journal: ToolJournal | None = None
        self._compile_lock: asyncio.Lock | None = None

    async def _compiled(self) -> Any:
        if self._graph is not None:
            return self._graph
        # Many runs may start at once; only the first opens the checkpoint database.
        if self._compile_lock is None:
            self._compile_lock = asyncio.Lock()
        async with self._compile_lock:
            if self._graph is None:
                self._graph = await self._compile()
        return self._graph

    async def _compile(self) -> Any:
        if self.checkpoint_url is not None:
            self._postgres = await PostgresCheckpoints.open(self.checkpoint_url, STATE_TYPES)
            self._saver = self._postgres.saver
            self._journal = self._postgres.journal
            deps = dataclasses.replace(self._deps, journal=self._journal)
            return build_graph(deps).compile(checkpointer=self._saver)
        import aiosqlite
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        if self.checkpoint_path is not None:
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        target = str(self.checkpoint_path) if self.checkpoint_path is not None else ":memory:"
        self._conn = await aiosqlite.connect(target)
        serde = JsonPlusSerializer(allowed_msgpack_modules=list(STATE_TYPES))
        saver = AsyncSqliteSaver(self._conn, serde=serde)
        await saver.setup()
        self._saver = saver
        journal = SqliteToolJournal(self._conn, saver.lock)
        await journal.setup()
        self._journal = journal
        deps = dataclasses.replace(self._deps, journal=journal)
        return build_graph(deps).compile(checkpointer=saver)

    def _config(
        self, thread_id: str, budgets: Budgets, deadline: float, run_id: str
    ) -> dict[str, Any]:
        return {
            "configurable": {"thread_id": thread_id, "deadline_at": deadline, "run_id": run_id},
            "recursion_limit": budgets.recursion_limit,
        }

    async def run(
        self,
        question: str,
        *,
        thread_id: str,
        run_id: str,
        options: RunOptions | None = None,
        graph_modes: Sequence[str] = (),
    ) -> AsyncIterator[Event]:
        """Answer `question` in `thread_id`, yielding events; ends with RunFinished or RunError.

        `graph_modes` (LangGraph stream modes a LangGraph-API client asked for) add the
        graph's own chunks as `GraphChunk` events; see `graph_stream_modes`."""
        if not question.strip():
            raise AgentUsageError("question is empty; pass the question text to run()")
        graph = await self._compiled()
        budgets = resolve_budgets(self.config, options)
        yield RunStarted(run_id=run_id, thread_id=thread_id, question=question)
        started = time.time()
        deadline = started + budgets.deadline_seconds
        # The start node takes the run id and the deadline from the config and checkpoints
        # them (resume() keeps this clock), as it does on any LangGraph server.
        state_in = {"question": question, "budgets": budgets}
        config = self._config(thread_id, budgets, deadline, run_id)
        async for event in self._drive(graph, state_in, config, run_id, graph_modes):
            if isinstance(event, RunFinished):
                await self._prune(thread_id, run_id)
            yield event

    async def resume(
        self, *, thread_id: str, run_id: str, graph_modes: Sequence[str] = ()
    ) -> AsyncIterator[Event]:
        """Continue an interrupted run from its last checkpoint, under the deadline it got
        when it started: a run past it finalizes at once (reason "deadline"), so a run that
        keeps crashing and resuming cannot outlive its time budget.

        A run that already finished yields its RunFinished again, so a client that lost
        the stream can still get the result.
        """
        graph = await self._compiled()
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        values = snapshot.values or {}
        if values.get("run_id") != run_id:
            yield RunError(
                run_id=run_id,
                kind="nothing_to_resume",
                message=f"thread {thread_id!r} has no run {run_id!r}; start it with run()",
            )
            return
        if not snapshot.next:
            result = values.get("result")
            if result is not None:
                yield finished_event(result)
            else:
                yield RunError(
                    run_id=run_id,
                    kind="nothing_to_resume",
                    message=f"run {run_id!r} has nothing left to do",
                )
            return
        budgets: Budgets = values["budgets"]
        question = values.get("current_question") or values.get("question", "")
        yield RunStarted(run_id=run_id, thread_id=thread_id, question=question)
        config = self._config(thread_id, budgets, stored_deadline(values), run_id)
        async for event in self._drive(graph, None, config, run_id, graph_modes):
            if isinstance(event, RunFinished):
                await self._prune(thread_id, run_id)
            yield event

    async def _prune(self, thread_id: str, run_id: str) -> None:
        """Drop the finished run's tool journal and keep only the thread's latest
        checkpoint (the saver's own prune is not implemented for SQLite in this LangGraph
        version)."""
        if self._journal is not None:
            await self._journal.forget_run(thread_id, run_id)
        if self.keep_checkpoint_history or self._saver is None:
            return
        if self._postgres is not None:
            await self._postgres.prune(thread_id)
            return
        async with self._saver.lock:
            async with self._conn.execute(
                "SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?", (thread_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if not row or row[0] is None:
                return
            for table in ("checkpoints", "writes"):
                await self._conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id <> ?",
                    (thread_id, row[0]),
                )
            await self._conn.commit()

    async def _drive(
        self,
        graph: Any,
        state_in: dict[str, Any] | None,
        config: dict[str, Any],
        run_id: str,
        graph_modes: Sequence[str] = (),
    ) -> AsyncIterator[Event]:
        from langgraph.errors import GraphRecursionError

        result: RunResult | None = None
        extra = graph_stream_modes(graph_modes)
        modes = list(dict.fromkeys(["custom", "updates", *extra]))
        try:
            async for mode, chunk in graph.astream(
                state_in, config, stream_mode=modes, durability="sync"
            ):
                if mode in extra:
                    yield GraphChunk(run_id=run_id, mode=mode, data=to_jsonable_python(chunk))
                if mode == "custom":
                    yield chunk
                elif mode == "updates":
                    for update in chunk.values():
                        if isinstance(update, dict) and update.get("result") is not None:
                            result = update["result"]
        except ModelError as exc:
            yield RunError(
                run_id=run_id, kind=run_error_kind(exc), message=str(exc), resumable=True
            )
            return
        except GraphRecursionError as exc:  # a bug: our budgets should always stop first
            yield RunError(run_id=run_id, kind="recursion_limit", message=str(exc), resumable=False)
            return
        if result is None:
            yield RunError(
                run_id=run_id,
                kind="internal_error",
                message="the graph ended without a result",
                resumable=True,
            )
            return
        yield finished_event(result)

    async def forget_thread(self, thread_id: str) -> None:
        """Delete everything kept for a thread: checkpoints, pending writes, tool journal."""
        await self._compiled()
        if self._journal is not None:
            await self._journal.forget_thread(thread_id)
        await self._saver.adelete_thread(thread_id)

    # -- checkpoints, as LangGraph's state API reads and writes them ---------------------
    @staticmethod
    def _at(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
        if checkpoint_id:
            conf["checkpoint_id"] = checkpoint_id
        return {"configurable": conf}

    async def state_snapshot(self, thread_id: str, checkpoint_id: str | None = None) -> Any:
        """The thread's `StateSnapshot` (latest, or at `checkpoint_id`); None if absent."""
        graph = await self._compiled()
        snap = await graph.aget_state(self._at(thread_id, checkpoint_id))
        return snap if snap.config.get("configurable", {}).get("checkpoint_id") else None

    async def state_history(
        self, thread_id: str, *, limit: int, before: str | None = None
    ) -> list[Any]:
        """The thread's checkpoints, newest first (every step of every run is kept when
        `keep_checkpoint_history` is set; otherwise the latest one)."""
        graph = await self._compiled()
        before_config = self._at(thread_id, before) if before else None
        return [
            snap
            async for snap in graph.aget_state_history(
                self._at(thread_id), limit=limit, before=before_config
            )
        ]

    async def update_state(
        self,
        thread_id: str,
        values: dict[str, Any] | None,
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
    ) -> dict[str, Any]:
        """Write `values` as if `as_node` had returned them (a new checkpoint, as LangGraph's
        `update_state`); returns the new checkpoint's config."""
        graph = await self._compiled()
        config: dict[str, Any] = await graph.aupdate_state(
            self._at(thread_id, checkpoint_id), values, as_node=as_node
        )
        return config

    def graph_view(self, *, xray: bool = False) -> dict[str, Any]:
        """The graph's nodes and edges as LangGraph draws them (`Graph.to_json`)."""
        drawn: dict[str, Any] = self._plain_graph().get_graph(xray=xray).to_json()
        for node in drawn.get("nodes", []):
            if isinstance(node.get("data"), dict):
                node["data"].pop("id", None)  # a Python object path, as the server drops it
        return drawn

    def graph_schemas(self) -> dict[str, Any]:
        """JSON schemas of the graph's input, output, state, config and context."""
        graph = self._plain_graph()
        return {
            "input_schema": graph.get_input_jsonschema(),
            "output_schema": graph.get_output_jsonschema(),
            "state_schema": graph.get_output_jsonschema(),  # the whole state is the output
            "config_schema": graph.get_config_jsonschema(),
            "context_schema": graph.get_context_jsonschema(),
        }

    def _plain_graph(self) -> Any:
        """The graph compiled without a checkpointer: enough to describe it."""
        return build_graph(self._deps).compile(name="research")

    async def thread_history(self, thread_id: str) -> list[Message]:
        """The thread's questions and final answers, oldest first."""
        graph = await self._compiled()
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        turns = (snapshot.values or {}).get("exchanges") or []
        return [t.to_message() for t in turns]

    async def aclose(self) -> None:
        if self._postgres is not None:
            await self._postgres.close()
            self._postgres = None
            self._graph = None
            self._journal = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
            self._graph = None
            self._journal = None
