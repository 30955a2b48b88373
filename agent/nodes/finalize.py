"""finalize: a budget ran out or the model gave up; answer from the evidence so far.

When time and tokens remain (step, tool or thinking budgets), one last model call
without tools asks for the best answer; otherwise, or if that fails, the answer is
built from the evidence: the sentence that most likely states the answer, cited (not a
paste of passages). A closing answer that only copies the observations back is detected
and asked for once more in the model's own words; if it is still a copy, the model-free
answer replaces it. Either way the result says why it was finalized, in words.

The closing call is offered a live answer sink: without tools, everything it writes is
the answer, so protocols that stream chat content send it to clients as it is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from langchain_core.runnables import RunnableConfig

from agent.actions.base import StepLimits
from agent.context import estimate_tokens
from agent.errors import ModelError
from agent.events import ReasoningDelta, StopReason, reason_text
from agent.evidence import is_dump, likely_span, sentences
from agent.llm.types import Usage
from agent.nodes.answer import conclude, live_answer
from agent.nodes.common import NodeDeps, deadline_at, emit, step_limits
from agent.prompts import fill
from agent.state import AgentState, AnswerDraft, StateUpdate

log = logging.getLogger(__name__)
_EXTRACT_PASSAGES = 3
REWORD = (
    "Do not copy the passages. In one or two sentences of your own, answer the question "
    "{{question}} and cite the passages you used as [n]."
)


def _found_numbers(state: AgentState) -> list[int]:
    """Citation numbers the run's searches returned, most recent step first."""
    numbers: list[int] = []
    for record in reversed(state.steps):
        for result in record.results:
            numbers.extend(n for n in result.numbers if n not in numbers)
    return numbers


def evidence_answer(state: AgentState, reason: StopReason) -> str:
    """A model-free answer: the reason in words, then the sentence of the found passages
    most likely to answer the question, with its citation (a second one from another
    passage when it is nearly as likely: two-hop answers often need both)."""
    sources = state.sources
    numbers = _found_numbers(state)[: _EXTRACT_PASSAGES * 3]
    head = f"I could not finish the research ({reason_text(reason)})."
    question = state.current_question
    best = likely_span(question, sources, numbers)
    if best is None:
        if not numbers:
            return head + " No relevant passages were found."
        top = next((n for n in numbers if n in sources), None)
        first = sentences(sources[top].text)[:1] if top is not None else []
        if top is None or not first:
            return head + " No relevant passages were found."
        return f"{head} No passage states the answer; the closest found: {first[0]} [{top}]"
    lines = [head, f"The likely answer, from the passages found: {best.text} [{best.number}]"]
    rest = [n for n in numbers if n != best.number]
    second = likely_span(question, sources, rest)
    if second is not None and second.score >= 0.6 * best.score:
        lines.append(f"Related: {second.text} [{second.number}]")
    return "\n".join(lines)


def _passage_texts(state: AgentState) -> list[str]:
    return [s.text for s in state.sources.values()]


async def _reword(
    deps: NodeDeps, state: AgentState, limits: StepLimits, on_reasoning: Callable[[str], None]
) -> tuple[str, Usage]:
    """One more closing call, asking for an answer in the model's own words."""
    instruction = fill(REWORD, question=state.current_question)
    try:
        return await deps.protocol.free_text(state, instruction, limits, on_reasoning, None)
    except (ModelError, TimeoutError) as exc:
        log.warning("finalize: the reworded answer failed (%s); answering from evidence", exc)
        return "", Usage()


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
                question=state.current_question,
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
            if text.strip() and is_dump(text, _passage_texts(state)):
                log.info("finalize: the closing answer copies the passages; asking once more")
                text, extra = await _reword(deps, state, limits, on_reasoning)
                usage = usage + extra
                if is_dump(text, _passage_texts(state)):
                    text = ""
        if not text.strip():
            text = evidence_answer(state, reason)
        closing = state.merged({"usage": usage, "streamed_answer": streamed})
        update = conclude(deps, closing, AnswerDraft(text=text), reason)
        update["usage"] = usage
        return update

    return finalize
