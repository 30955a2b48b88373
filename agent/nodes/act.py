"""act: run the tools the model asked for, in parallel under a cap, within the budget.

Passages are numbered after all calls finish, in the order the model asked, so the
numbering does not depend on which call finished first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from agent.context import estimate_tokens, truncate_to_tokens
from agent.events import HitInfo, ToolCallEvent, ToolResultEvent
from agent.nodes.common import NodeDeps, emit, thread_of, tool_context
from agent.state import AgentState, StateUpdate, ToolCallRecord, ToolResultRecord
from agent.tools.base import ToolContext, ToolOutput, finish


async def run_calls(
    deps: NodeDeps,
    state: AgentState,
    calls: Sequence[ToolCallRecord],
    ctx: ToolContext,
    *,
    thread_id: str,
) -> list[ToolResultRecord]:
    """Execute `calls`, emit their events, and return results in call order.

    Each outcome goes to the journal as soon as its tool returns; a step re-run after a
    crash takes the recorded outcome instead of calling the tool again."""
    run_id, step = state.run_id, state.step
    journal = deps.journal
    budget_left = state.budgets.max_tool_calls - state.tool_calls_used
    semaphore = asyncio.Semaphore(deps.config.parallel_tool_cap)
    for call in calls:
        emit(
            ToolCallEvent(
                run_id=run_id, step=step, call_id=call.id, name=call.name, arguments=call.arguments
            )
        )

    async def one(index: int, call: ToolCallRecord) -> ToolOutput | ToolResultRecord:
        if index >= budget_left:
            return ToolResultRecord.failed(
                call, "budget", "the tool-call budget is used up; answer now."
            )
        if journal is not None:
            kept = await journal.recall(thread_id, run_id, step, call.id)
            if kept is not None:
                return kept
        async with semaphore:
            outcome = await deps.toolbox.execute(call, ctx)
        if journal is not None:
            await journal.record(thread_id, run_id, step, call.id, outcome)
        return outcome

    outcomes = await asyncio.gather(*(one(i, c) for i, c in enumerate(calls)))
    results: list[ToolResultRecord] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        result = outcome if isinstance(outcome, ToolResultRecord) else finish(call, outcome, ctx)
        results.append(result)
        hits = [
            HitInfo.of(ctx.registry.sources[n], result.scores[i] if i < len(result.scores) else 0.0)
            for i, n in enumerate(result.numbers)
        ]
        emit(
            ToolResultEvent(
                run_id=run_id,
                step=step,
                call_id=call.id,
                name=call.name,
                ok=result.ok,
                observation=result.observation,
                hits=hits,
                cached=result.cached,
            )
        )
    return results


def tool_messages(
    state: AgentState, calls: Sequence[ToolCallRecord], results: Sequence[ToolResultRecord]
) -> list[AnyMessage]:
    """The step as chat messages: the model's tool calls (with its reasoning), then one
    tool message per result, as LangChain-speaking clients show them."""
    reasoning = state.steps[-1].reasoning if state.steps else ""
    ask = AIMessage(
        content="",
        id=f"{state.run_id}-s{state.step}",
        tool_calls=[
            {"name": c.name, "args": arguments_of(c.arguments), "id": c.id, "type": "tool_call"}
            for c in calls
        ],
        additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
    )
    answers: list[AnyMessage] = [
        ToolMessage(
            content=r.observation,
            tool_call_id=r.call_id,
            name=r.name,
            id=f"{state.run_id}-{r.call_id}",
            status="success" if r.ok else "error",
        )
        for r in results
    ]
    return [ask, *answers]


def arguments_of(text: str) -> dict[str, object]:
    """Tool arguments as a dict (LangChain's tool-call shape); raw text when not JSON."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def commit(
    state: AgentState,
    ctx: ToolContext,
    results: list[ToolResultRecord],
    calls: Sequence[ToolCallRecord] | None = None,
) -> StateUpdate:
    """The state update for executed calls (sources, cache, counters, step record,
    messages); `calls` default to the model's pending ones."""
    used = state.tool_calls_used + sum(
        1 for r in results if r.failure is None or r.failure.kind != "budget"
    )
    steps = list(state.steps)
    if steps:  # the observation text already lives in the transcript: keep checkpoints small
        slim = tuple(r.model_copy(update={"observation": ""}) for r in results)
        steps[-1] = steps[-1].model_copy(update={"results": slim})
    return {
        "sources": dict(ctx.registry.sources),
        "query_cache": ctx.query_cache,
        "tool_calls_used": used,
        "steps": steps,
        "pending": [],
        "messages": tool_messages(state, state.pending if calls is None else calls, results),
    }


def make_act(deps: NodeDeps):
    condense = deps.config.condense

    async def act(state: AgentState, config: RunnableConfig) -> StateUpdate:
        ctx = tool_context(deps, state, widen=condense)
        results = await run_calls(deps, state, state.pending, ctx, thread_id=thread_of(config))
        update = commit(state, ctx, results)
        limit = deps.config.condense_min_tokens
        if condense and any(estimate_tokens(r.observation) > limit for r in results):
            update["pending_results"] = results  # the condense node observes them
            return update
        budget = deps.config.observation_token_budget
        fitted = [
            r.model_copy(update={"observation": truncate_to_tokens(r.observation, budget)})
            for r in results
        ]
        update.update(deps.protocol.observe(state.merged(update), fitted))
        return update

    return act
