"""`search`: the retriever as a tool, with a per-run cache of repeated queries."""

from __future__ import annotations

import asyncio
import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agent.tools.base import ToolContext, ToolOutput

CACHED_NOTE = (
    "(cached: this query was already searched in this run, so these are the same results "
    "as before. Search for something different, open a passage, or answer.)"
)


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(
        ..., min_length=1, max_length=300, description="What to look for, in a few words."
    )


def normalise_query(query: str) -> str:
    return " ".join(re.findall(r"\w+", query.lower()))


class SearchTool:
    name: ClassVar[str] = "search"
    description: ClassVar[str] = (
        "Search the document collection. Returns numbered passages; cite them as [n]."
    )
    args_model: ClassVar[type[BaseModel]] = SearchArgs

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutput:
        assert isinstance(args, SearchArgs)
        key = normalise_query(args.query)
        cached = ctx.query_cache.get(key)
        if cached is not None:
            sources = tuple(ctx.registry.sources[n] for n in cached)
            return ToolOutput(text=CACHED_NOTE, passages=sources, cached=True)
        hits = await asyncio.to_thread(ctx.retriever.search, args.query, ctx.top_k)
        return ToolOutput(passages=tuple(hits), scores=tuple(h.score for h in hits), cache_key=key)
