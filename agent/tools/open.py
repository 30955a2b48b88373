"""`open`: read around a cited passage, or its whole document."""

from __future__ import annotations

import asyncio
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.tools.base import ToolContext, ToolError, ToolOutput


class OpenArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: int = Field(..., ge=1, le=100_000, description="Citation number of a passage.")
    scope: Literal["neighbours", "document"] = Field(
        "neighbours", description="Passages around it, or the whole document."
    )
    window: int = Field(1, ge=1, le=3, description="Neighbours on each side.")


class OpenTool:
    name: ClassVar[str] = "open"
    description: ClassVar[str] = (
        "Read more around passage [number]: its neighbours or its whole document."
    )
    args_model: ClassVar[type[BaseModel]] = OpenArgs

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutput:
        assert isinstance(args, OpenArgs)
        source = ctx.registry.sources.get(args.number)
        if source is None:
            known = sorted(ctx.registry.sources)
            raise ToolError(
                f"there is no passage [{args.number}] in this run; known numbers: "
                f"{known[:30] or 'none yet (search first)'}"
            )
        if source.passage_id < 0:
            raise ToolError(f"[{args.number}] is a fetched web page; its text was shown already")
        if args.scope == "document":
            passages = await asyncio.to_thread(ctx.retriever.document_passages, source.doc_id)
        else:
            passages = await asyncio.to_thread(
                ctx.retriever.neighbours, source.passage_id, args.window
            )
        if not passages:
            raise ToolError(f"passage [{args.number}] is no longer in the index")
        return ToolOutput(passages=tuple(passages))
