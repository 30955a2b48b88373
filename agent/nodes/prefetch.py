"""prefetch: the retrieval-first policy. Search the question itself (and, with
`prefetch_names`, each name the question holds) before the model reasons (optionally
through the model-free multi-hop strategy), recorded as if the model had asked; cheap, and
it gives weak models evidence from the first step."""

from __future__ import annotations

import json

from langchain_core.runnables import RunnableConfig

from agent.nodes.act import commit, run_calls
from agent.nodes.common import NodeDeps, thread_of, tool_context
from agent.state import AgentState, StateUpdate, ToolCallRecord
from retrieval.search.multihop import question_entities


def make_prefetch(deps: NodeDeps):
    async def prefetch(state: AgentState, config: RunnableConfig) -> StateUpdate:
        ctx = tool_context(deps, state)
        if deps.config.multihop_first and not deps.config.multihop_search:
            from retrieval.search.multihop import MultiHopRetriever

            ctx.retriever = MultiHopRetriever(deps.retriever)
        question = state.current_question
        # The question itself, then each name it holds on its own: a long question's
        # search is pulled towards its other words, and the passage about the named thing
        # is the one that links to the next hop ("R1 is built on V3").
        queries = [question[:300]]
        for name in question_entities(question, limit=deps.config.prefetch_names):
            if name.casefold() != question.strip().casefold():
                queries.append(name)
        calls = [
            ToolCallRecord(
                id=f"prefetch-{i}",
                name="search",
                arguments=json.dumps({"query": query}, ensure_ascii=False),
            )
            for i, query in enumerate(queries)
        ]
        results = await run_calls(deps, state, calls, ctx, thread_id=thread_of(config))
        update = commit(state, ctx, results, calls)
        current = state.merged(update)
        update.update(deps.protocol.record_actions(current, calls))
        current = current.merged(update)
        update.update(deps.protocol.observe(current, results))
        return update

    return prefetch
