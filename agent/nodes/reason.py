"""reason: one model call (streamed), checked against the budgets, parsed into actions.

Before the call it checks the step, token and time budgets, and compacts old
observations when the prompt nears the context length. A turn with no usable action
(thinking overrun, empty, malformed) adds a short instruction and counts as a step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from langchain_core.runnables import RunnableConfig

from agent.errors import ModelRequestError
from agent.events import ReasoningDelta
from agent.nodes.answer import LiveAnswer, live_answer
from agent.nodes.common import (
    NodeDeps,
    context_overflow,
    deadline_at,
    emit,
    exhausted,
    step_limits,
)
from agent.state import AgentState, StateUpdate, StepRecord, ToolCallRecord
from agent.tools.search import normalise_query

NUDGE_THINKING = (
    "You used this step's thinking budget. Stop thinking and act now: search for what you "
    "still need, or give your final answer with citations."
)
NUDGE_EMPTY = "You gave neither an action nor an answer. Search for what you need, or answer."
NUDGE_INVALID = "Your last action could not be used ({problem}). Reply with one valid action."
# When the server says the prompt does not fit, old observations are compacted to this share
# of the estimated prompt and the call is made once more.
OVERFLOW_SHRINK = 0.7


def only_repeats(state: AgentState, actions: Sequence[ToolCallRecord]) -> bool:
    """True when every requested call is a search this run has already made."""
    cache = state.query_cache
    for action in actions:
        if action.name != "search":
            return False
        try:
            query = json.loads(action.arguments).get("query")
        except (ValueError, AttributeError):
            return False
        if not isinstance(query, str) or normalise_query(query) not in cache:
            return False
    return bool(actions)


def _streamed(live: LiveAnswer | None) -> StateUpdate:
    """Record answer text a step already sent live, so `conclude` does not send it again."""
    return {"streamed_answer": live.text} if live is not None and live.text else {}


def make_reason(deps: NodeDeps):
    protocol = deps.protocol

    async def reason(state: AgentState, config: RunnableConfig) -> StateUpdate:
        deadline = deadline_at(config)
        stop = exhausted(state, deadline)
        if stop is not None:
            return {"stop_reason": stop}
        step = state.step + 1
        limits = step_limits(deps, state, deadline)
        update: StateUpdate = {"step": step}
        # Leave room for at least a visible step; compact old observations otherwise.
        room = deps.config.usable_context - deps.config.max_tokens_per_step - 32
        if protocol.context_size(state) > room:
            compacted = protocol.compact(state, room)
            if compacted:
                update.update(compacted)
                limits = step_limits(deps, state.merged(compacted), deadline)
        current = state.merged(update)
        run_id = state.run_id

        def on_reasoning(text: str) -> None:
            emit(ReasoningDelta(run_id=run_id, step=step, text=text))

        live = live_answer(current, step)
        started = time.monotonic()
        try:
            try:
                turn, transcript_update = await protocol.step(current, limits, on_reasoning, live)
            except ModelRequestError as exc:
                shrunk = (
                    protocol.compact(current, int(protocol.context_size(current) * OVERFLOW_SHRINK))
                    if context_overflow(exc)
                    else None
                )
                if not shrunk:
                    raise
                update.update(shrunk)
                current = state.merged(update)
                limits = step_limits(deps, current, deadline)
                turn, transcript_update = await protocol.step(current, limits, on_reasoning, live)
        except TimeoutError:
            update["stop_reason"] = "deadline"
            return {**update, **_streamed(live)}
        update.update(_streamed(live))
        usage = state.usage + turn.usage
        record = StepRecord(
            index=step,
            reasoning=turn.reasoning,
            content=turn.content,
            actions=turn.actions,
            answer=turn.answer,
            usage=turn.usage,
            seconds=time.monotonic() - started,
            note=turn.note,
        )
        update["usage"] = usage
        update["steps"] = [*state.steps, record]
        if turn.actions:
            if not limits.allow_tools:
                update["stop_reason"] = "max_tool_calls"
                return update
            # Weak models loop on one query; the cache answers, but nothing new arrives.
            repeats = state.repeats + 1 if only_repeats(state, turn.actions) else 0
            if repeats >= deps.config.max_repeated_searches:
                update["stop_reason"] = "repeated_searches"
                return update
            update.update(transcript_update)
            update["pending"] = list(turn.actions)
            update["overruns"] = 0
            update["repeats"] = repeats
            return update
        if turn.answer is not None:
            update.update(transcript_update)
            update["draft"] = turn.answer
            update["overruns"] = 0
            return update
        overruns = state.overruns + 1
        update["overruns"] = overruns
        note = turn.note or "empty"
        if note == "thinking_overrun" and overruns >= 2:
            update["stop_reason"] = "thinking_budget"
            return update
        if overruns >= 3:
            update["stop_reason"] = "model_gave_up"
            return update
        if note == "thinking_overrun":
            text = NUDGE_THINKING
        elif note.startswith("invalid_action"):
            text = NUDGE_INVALID.format(problem=note.removeprefix("invalid_action: "))
        else:
            text = NUDGE_EMPTY
        update.update(transcript_update)
        update.update(protocol.nudge(current.merged(transcript_update), text))
        return update

    return reason
