"""`build_mcp_server(backend)`: the corpus and the research agent as MCP tools.

Built on the SDK's `MCPServer`, which derives each tool's input schema from the function
signature and its output schema from the returned pydantic model, so a client's model
sees typed arguments with descriptions. The results carry the project's own types
(`Hit`, `Passage`, the cited `Source`), so MCP clients read the same fields as the HTTP
API. The backend is looked up on every call: the HTTP service builds its parts in its
lifespan, after this server was made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import BaseModel, ConfigDict, Field

from agent.config import RunOptions
from agent.events import Event, RunError, RunFinished, Source, ToolCallEvent, ToolResultEvent
from retrieval.types import Hit, Passage, Retriever

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from serving.mcp.research import ResearchRuns

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
    runs: Callable[[], ResearchRuns]
    top_k_max: int = 50


class SearchOut(BaseModel):
    query: str
    mode: str
    hits: list[Hit] = Field(description="Best first; pass a hit's passage_id to open_passage.")


class PassagesOut(BaseModel):
    passages: list[Passage] = Field(description="In document order; the asked one included.")


class ResearchOut(BaseModel):
    run_id: str = Field(description="The run's id (in the HTTP service: GET /v1/runs/{id}).")
    answer: str = Field(description="The answer; [n] markers cite `sources`.")
    sources: list[Source] = Field(
        description="Only sources the answer cites, checked; `number` is the [n] it uses, "
        "`text` the cited span. passage_id is negative for web pages and MCP tool results."
    )
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
        "best passages with passage_id, title, source, character offsets and score."
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
        return SearchOut(query=query, mode=used, hits=hits)

    @server.tool(
        description="Read a passage by id (from search or research sources) with its "
        "neighbouring passages in the same document."
    )
    async def open_passage(
        id: Annotated[int, Field(description="The passage_id of a search hit or source.")],
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
        return PassagesOut(passages=list(passages))

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
        run = await backend.runs().start(question, options, ctx)
        try:
            done = await _follow(run.events(), ctx)
        except BaseException:  # the client cancelled (or the run failed): stop the run
            with anyio.CancelScope(shield=True):
                await run.cancel()
            raise
        return _research_out(run.run_id, done)

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


def _research_out(run_id: str, done: RunFinished) -> ResearchOut:
    return ResearchOut(
        run_id=run_id, answer=done.answer, sources=list(done.sources),
        finalized_reason=done.finalized_reason, steps=done.steps, tool_calls=done.tool_calls,
        seconds=done.seconds,
    )  # fmt: skip
