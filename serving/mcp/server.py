"""`build_mcp_server(backend)`: the corpus and the research agent as MCP tools.

Built on the SDK's `MCPServer`, which derives each tool's input schema from the function
signature and its output schema from the returned pydantic model, so a client's model
sees typed arguments with descriptions. The backend is looked up on every call: the HTTP
service builds its parts in its lifespan, after this server was made.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import BaseModel, ConfigDict, Field

from agent.config import RunOptions
from agent.events import Event, RunError, RunFinished, ToolCallEvent, ToolResultEvent
from retrieval.types import Hit, Passage, Retriever

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from serving.http.research import ResearchEngine

Mode = Literal["hybrid", "dense", "bm25"]

INSTRUCTIONS = (
    "thinkrag searches and researches one private document collection. Use `search` for "
    "quick lookups (passages with ids, no model involved), `open_passage` to read around "
    "a hit, and `research` for questions needing several searches: it runs the research "
    "agent and returns an answer whose [n] markers refer to the listed sources."
)


class McpToolError(ToolError):
    """A call this server cannot honour; the SDK returns the message as a tool error."""


@dataclass
class Backend:
    """Where the tools get their parts; each getter is called per request."""

    retriever: Callable[[], Retriever]
    engine: Callable[[], ResearchEngine]
    top_k_max: int = 50


class PassageOut(BaseModel):
    id: int = Field(description="Passage id: pass it to open_passage.")
    doc_id: str
    title: str
    source: str
    ordinal: int = Field(description="Position of the passage in its document.")
    text: str

    @classmethod
    def of(cls, p: Passage) -> PassageOut:
        return cls(
            id=p.passage_id, doc_id=p.doc_id, title=p.title, source=p.source,
            ordinal=p.ordinal, text=p.text,
        )  # fmt: skip


class HitOut(PassageOut):
    score: float

    @classmethod
    def of_hit(cls, h: Hit) -> HitOut:
        return cls(**PassageOut.of(h).model_dump(), score=h.score)


class SearchOut(BaseModel):
    query: str
    mode: str
    hits: list[HitOut]


class PassagesOut(BaseModel):
    passages: list[PassageOut] = Field(description="In document order; the asked one included.")


class SourceOut(BaseModel):
    number: int = Field(description="The [n] the answer uses for this source.")
    id: int = Field(description="Passage id (negative for web pages or MCP tool results).")
    doc_id: str
    title: str
    source: str
    text: str


class ResearchOut(BaseModel):
    answer: str = Field(description="The answer; [n] markers cite `sources`.")
    sources: list[SourceOut] = Field(description="Only sources the answer cites, checked.")
    finalized_reason: str | None = Field(
        None, description="Set when a budget ran out and the agent answered from what it had."
    )
    steps: int
    tool_calls: int
    seconds: float


class ResearchBudgets(BaseModel):
    """Per-run limits; each is clamped to the server's maximum (an unknown one is refused)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(None, ge=1, description="Reasoning steps.")
    max_tool_calls: int | None = Field(None, ge=0, description="Searches and other tool calls.")
    max_total_tokens: int | None = Field(None, ge=64, description="Model tokens in total.")
    deadline_seconds: float | None = Field(None, gt=0, description="Wall-clock limit.")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages per search.")


def _with_mode(retriever: Retriever, mode: Mode | None) -> Retriever:
    """The retriever searching in `mode` (same index and embedder), or a clear refusal."""
    current = getattr(retriever, "mode", None)
    if mode is None or mode == current:
        return retriever
    from retrieval.search.retriever import FaissRetriever

    if not isinstance(retriever, FaissRetriever):
        raise McpToolError(f"mode {mode!r} is not available here; leave mode out")
    if mode != "bm25" and retriever.embedder is None:
        raise McpToolError(
            f"mode {mode!r} needs the index's embedder, which this server did not load "
            "(it runs in bm25 mode); use mode 'bm25' or leave mode out"
        )
    return FaissRetriever(retriever.reader, mode=mode, embedder=retriever.embedder)


def build_mcp_server(backend: Backend, *, name: str = "thinkrag") -> MCPServer:
    from mcp.server.mcpserver import MCPServer

    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS, log_level="WARNING")
    by_mode: dict[tuple[int, str | None], Retriever] = {}

    def retriever_for(mode: Mode | None) -> Retriever:
        base = backend.retriever()
        key = (id(base), mode)
        if key not in by_mode:
            by_mode[key] = _with_mode(base, mode)
        return by_mode[key]

    @server.tool(
        description="Search the document collection (no model involved). Returns the "
        "best passages with ids, titles, sources and scores."
    )
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=1000, description="What to find.")],
        k: Annotated[int, Field(ge=1, le=50, description="How many passages.")] = 5,
        mode: Annotated[
            Mode | None,
            Field(description="hybrid (default), dense (embeddings) or bm25 (keywords)."),
        ] = None,
    ) -> SearchOut:
        retriever = retriever_for(mode)
        hits = await asyncio.to_thread(retriever.search, query, min(k, backend.top_k_max))
        used = mode or str(getattr(retriever, "mode", "default"))
        return SearchOut(query=query, mode=used, hits=[HitOut.of_hit(h) for h in hits])

    @server.tool(
        description="Read a passage by id (from search or research sources) with its "
        "neighbouring passages in the same document."
    )
    async def open_passage(
        id: Annotated[int, Field(description="Passage id.")],
        neighbours: Annotated[
            int, Field(ge=0, le=5, description="Passages to include on each side.")
        ] = 1,
    ) -> PassagesOut:
        retriever = backend.retriever()
        if neighbours == 0:
            one = await asyncio.to_thread(retriever.get_passage, id)
            passages = [one] if one is not None else []
        else:
            passages = await asyncio.to_thread(retriever.neighbours, id, neighbours)
        if not passages:
            raise McpToolError(f"there is no passage with id {id}; take ids from search results")
        return PassagesOut(passages=[PassageOut.of(p) for p in passages])

    @server.tool(
        description="Research a question with the agent: it searches the collection "
        "several times, reads, and answers with numbered citations. Sends a progress "
        "notification per search (query, hits). Takes seconds to minutes; cancel to stop."
    )
    async def research(
        question: Annotated[str, Field(min_length=1, max_length=4000)],
        ctx: Context,
        budgets: ResearchBudgets | None = None,
    ) -> ResearchOut:
        options = RunOptions(**budgets.model_dump(exclude_none=True)) if budgets else None
        run_id = uuid.uuid4().hex
        events = backend.engine().run(
            question, thread_id=f"mcp-{run_id}", run_id=run_id, options=options
        )
        # The run gets a task of its own: the SDK cancels a handler through an anyio
        # scope, which re-cancels every await of LangGraph's clean-up; a plain task
        # cancel lets the run unwind (and drop its model request) as the service's does.
        task = asyncio.ensure_future(_follow(events, ctx))
        try:
            done = await asyncio.shield(task)
        except BaseException:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})
            raise
        return _research_out(done)

    @server.resource(
        "thinkrag://doc/{doc_id}",
        description="The full text of one indexed document, passages joined in order.",
        mime_type="text/plain",
    )
    async def document(doc_id: str) -> str:
        passages = await asyncio.to_thread(backend.retriever().document_passages, doc_id)
        if not passages:
            raise ResourceError(f"there is no document {doc_id!r} in the index")
        return "\n\n".join(p.text for p in passages)

    return server


async def _follow(events: AsyncIterator[Event], ctx: Context) -> RunFinished:
    """Drive a run to its end, one progress notification per tool result."""
    queries: dict[str, str] = {}
    results = 0
    async for event in events:
        if isinstance(event, ToolCallEvent):
            queries[event.call_id] = _query_of(event.arguments) or event.name
        elif isinstance(event, ToolResultEvent):
            results += 1
            what = queries.get(event.call_id, event.name)
            note = f"{event.name} {what!r}: " + (
                f"{len(event.hits)} hits" if event.ok else "failed"
            )
            await ctx.report_progress(results, None, note)
        elif isinstance(event, RunError):
            raise McpToolError(f"research failed ({event.kind}): {event.message}")
        elif isinstance(event, RunFinished):
            return event
    raise McpToolError("the research run ended without an answer")


def _query_of(arguments: str) -> str | None:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return None
    query = value.get("query") if isinstance(value, dict) else None
    return query if isinstance(query, str) else None


def _research_out(done: RunFinished) -> ResearchOut:
    return ResearchOut(
        answer=done.answer,
        sources=[
            SourceOut(
                number=s.number,
                id=s.passage_id,
                doc_id=s.doc_id,
                title=s.title,
                source=s.source,
                text=s.text,
            )
            for s in done.sources
        ],
        finalized_reason=done.finalized_reason,
        steps=done.steps,
        tool_calls=done.tool_calls,
        seconds=done.seconds,
    )
