"""finalize: a budget ran out or the model gave up; answer from the evidence so far.

When time and tokens remain (step, tool or thinking budgets), one last model call
without tools asks for the best answer; otherwise, or if that fails, the answer is
built from the top passages. Either way the result says why it was finalized.

The closing call is offered a live answer sink: without tools, everything it writes is
the answer, so protocols that stream chat content send it to clients as it is written.
"""

from __future__ import annotations

import logging

from langchain_core.runnables import RunnableConfig

from agent.context import estimate_tokens
from agent.errors import ModelError
from agent.events import ReasoningDelta, StopReason, reason_text
from agent.nodes.answer import conclude, live_answer
from agent.nodes.common import NodeDeps, deadline_at, emit, step_limits
from agent.prompts import fill
from agent.state import AgentState, AnswerDraft, StateUpdate

log = logging.getLogger(__name__)
_EXTRACT_PASSAGES = 3


def evidence_answer(state: AgentState, reason: StopReason) -> str:
    """A model-free answer: the reason, then the most recently found passages, cited."""
    sources = state.sources
    steps = state.steps
    numbers: list[int] = []
    for record in reversed(steps):
        for result in record.results:
            numbers.extend(n for n in result.numbers if n not in numbers)
    picked = sorted(numbers[: _EXTRACT_PASSAGES * 3])[:_EXTRACT_PASSAGES]
    head = f"I could not finish the research ({reason_text(reason)})."
    if not picked:
        return head + " No relevant passages were found."
    lines = [head, "The most relevant passages found:"]
    for n in picked:
        text = " ".join(sources[n].text.split())
        lines.append(f"- {text[:300]} [{n}]")
    return "\n".join(lines)


def make_finalize(deps: NodeDeps):
    async def finalize(state: AgentState, config: RunnableConfig) -> StateUpdate:
        reason: StopReason = state.stop_reason or "model_gave_up"
        text = ""
        usage = state.usage
        deadline = deadline_at(config)
        can_call = reason not in ("deadline", "max_total_tokens")
        streamed = state.streamed_answer
        if deps.config.finalize_with_model and can_call:
            instruction = fill(
                deps.prompts.slot("finalize"),
                reason=reason_text(reason),
                question=state.question,
            )
            # The closing call must fit the context too, instruction included: compact old
            # observations first, then give the answer whatever room is left.
            asked = estimate_tokens(instruction) + 8
            room = deps.config.usable_context - deps.config.max_tokens_per_step - asked - 32
            if deps.protocol.context_size(state) > room:
                state = state.merged(deps.protocol.compact(state, room) or {})
            limits = step_limits(deps, state, deadline)
            limits = type(limits)(
                max_tokens=max(16, limits.max_tokens - asked),
                thinking_tokens=limits.thinking_tokens,
                allow_tools=False,
                deadline_at=deadline,
            )
            run_id, step = state.run_id, state.step

            def on_reasoning(delta: str) -> None:
                emit(ReasoningDelta(run_id=run_id, step=step, text=delta))

            live = live_answer(state, step)
            try:
                text, extra = await deps.protocol.free_text(
                    state, instruction, limits, on_reasoning, live
                )
                usage = usage + extra
            except (ModelError, TimeoutError) as exc:
                log.warning("finalize: model call failed (%s); answering from evidence", exc)
                text = ""
            streamed = streamed or (live.text if live is not None else "")
        if not text.strip():
            text = evidence_answer(state, reason)
        closing = state.merged({"usage": usage, "streamed_answer": streamed})
        update = conclude(deps, closing, AnswerDraft(text=text), reason)
        update["usage"] = usage
        return update

    return finalize
