"""answer: check the draft's citations, stream it, and produce the run's result.

Only numbers the run handed out survive; unknown ones are removed and reported. When a
weak model cites nothing although evidence exists, the answer stays uncited: we never
attach sources the model did not choose.
"""

from __future__ import annotations

import time

from agent.citations import check_answer, cited_span
from agent.events import AnswerDelta, CitationEvent, Source
from agent.nodes.common import NodeDeps, emit, usage_of
from agent.state import AgentState, AnswerDraft, ChatTurn, RunResult

_CHUNK = 64


def conclude(
    deps: NodeDeps, state: AgentState, draft: AnswerDraft, finalized_reason: str | None
) -> AgentState:
    """Check citations, emit answer and citation events, and build the result update."""
    sources = state.get("sources") or {}
    checked = check_answer(draft.text, sources.keys(), draft.citations)
    run_id, step = state["run_id"], state.get("step", 0)
    for i in range(0, len(checked.text), _CHUNK):
        emit(AnswerDelta(run_id=run_id, step=step, text=checked.text[i : i + _CHUNK]))
    cited = tuple(
        sources[n].model_copy(update={"text": cited_span(sources[n])}) for n in checked.cited
    )
    for s in cited:
        emit(CitationEvent(run_id=run_id, step=step, source=Source(**s.model_dump())))
    result = RunResult(
        run_id=run_id,
        answer=checked.text,
        sources=cited,
        finalized_reason=finalized_reason,
        removed_citations=checked.removed,
        usage=usage_of(state),
        steps=step,
        tool_calls=state.get("tool_calls_used", 0),
        seconds=max(0.0, time.time() - state.get("started_at", time.time())),
    )
    update: AgentState = {"result": result, "draft": None, "pending": []}
    update.update(deps.protocol.record_answer(state, checked.text))
    answer_turn = ChatTurn(role="assistant", content=checked.text, kind="answer")
    update["exchanges"] = [*state.get("exchanges", []), answer_turn]
    return update


def make_answer(deps: NodeDeps):
    async def answer(state: AgentState) -> AgentState:
        draft = state.get("draft") or AnswerDraft(text="")
        return conclude(deps, state, draft, None)

    return answer
