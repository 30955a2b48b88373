"""prefetch: the retrieval-first policy. Search the question itself before the model
reasons (optionally through the model-free multi-hop strategy), recorded as if the model
had asked; cheap, and it gives weak models evidence from the first step."""

from __future__ import annotations

import json

from langchain_core.runnables import RunnableConfig

from agent.nodes.act import commit, run_calls
from agent.nodes.common import NodeDeps, thread_of, tool_context
from agent.state import AgentState, StateUpdate, ToolCallRecord


def make_prefetch(deps: NodeDeps):
    async def prefetch(state: AgentState, config: RunnableConfig) -> StateUpdate:
        ctx = tool_context(deps, state)
        if deps.config.multihop_first and not deps.config.multihop_search:
            from retrieval.search.multihop import MultiHopRetriever

            ctx.retriever = MultiHopRetriever(deps.retriever)
        question = state.question
        call = ToolCallRecord(
            id="prefetch-0",
            name="search",
            arguments=json.dumps({"query": question[:300]}, ensure_ascii=False),
        )
        results = await run_calls(deps, state, [call], ctx, thread_id=thread_of(config))
        update = commit(state, ctx, results)
        current = state.merged(update)
        update.update(deps.protocol.record_actions(current, [call]))
        current = current.merged(update)
        update.update(deps.protocol.observe(current, results))
        return update

    return prefetch
