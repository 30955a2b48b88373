"""answer: check the draft's citations, stream it, and produce the run's result.

Only numbers the run handed out survive; unknown ones are removed and reported. When a
weak model cites nothing although evidence exists, the answer stays uncited: we never
attach sources the model did not choose.

The answer reaches clients as `AnswerDelta`s either live, while the model writes it
(`LiveAnswer`, from the reason or finalize node), or here after the fact; either way the
deltas of a run concatenate to exactly `RunFinished.answer`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from langchain_core.messages import AIMessage

from agent.citations import CheckedAnswer, CitationFilter, check_answer, cited_span
from agent.events import AnswerDelta, CitationEvent, StopReason
from agent.nodes.common import NodeDeps, emit
from agent.state import AgentState, AnswerDraft, ChatTurn, RunResult, StateUpdate

_CHUNK = 64


class LiveAnswer:
    """Sends a model's answer as `AnswerDelta`s while it is written, citation-checked.

    Text passes through `CitationFilter` with the citation numbers known at the call, so
    clients get exactly what `check_answer` keeps; `text` is what was sent, stored in the
    state (`streamed_answer`) so `conclude` sends only what is still missing.
    """

    def __init__(self, run_id: str, step: int, known: Iterable[int]) -> None:
        self._run_id, self._step = run_id, step
        self._filter = CitationFilter(known)
        self._sent: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._sent)

    def feed(self, text: str) -> None:
        self._send(self._filter.feed(text))

    def finish(self) -> None:
        self._send(self._filter.finish())

    def _send(self, text: str) -> None:
        if text:
            self._sent.append(text)
            emit(AnswerDelta(run_id=self._run_id, step=self._step, text=text))


def live_answer(state: AgentState, step: int) -> LiveAnswer | None:
    """A sink for streaming this run's answer live; None once some answer text went out
    (a second live call would make the sent text two answers)."""
    if state.streamed_answer:
        return None
    return LiveAnswer(state.run_id, step, state.sources.keys())


def settle(streamed: str, draft: AnswerDraft, known: Collection[int]) -> CheckedAnswer:
    """The checked answer, made to begin with the text already streamed to clients.

    Normally the streamed text is the whole checked answer. When the streaming call did
    not end as the answer (deadline or model failure mid-answer, tool calls after all),
    sent events cannot be taken back, so the answer continues them after a blank line.
    The streamed part already passed the citation filter; it is only read for its numbers.
    """
    checked = check_answer(draft.text, known, draft.citations)
    if checked.text.startswith(streamed):
        return checked
    sent = check_answer(streamed, known)
    text = f"{streamed}\n\n{checked.text}" if checked.text else streamed
    return CheckedAnswer(
        text=text,
        cited=tuple(dict.fromkeys([*sent.cited, *checked.cited])),
        removed=checked.removed,
    )


def conclude(
    deps: NodeDeps, state: AgentState, draft: AnswerDraft, finalized_reason: StopReason | None
) -> StateUpdate:
    """Check citations, emit answer and citation events, and build the result update."""
    sources = state.sources
    streamed = state.streamed_answer
    checked = settle(streamed, draft, sources.keys())
    run_id, step = state.run_id, state.step
    rest = checked.text[len(streamed) :]
    for i in range(0, len(rest), _CHUNK):
        emit(AnswerDelta(run_id=run_id, step=step, text=rest[i : i + _CHUNK]))
    cited = tuple(
        sources[n].model_copy(update={"text": cited_span(sources[n])}) for n in checked.cited
    )
    for s in cited:
        emit(CitationEvent(run_id=run_id, step=step, source=s))
    result = RunResult(
        run_id=run_id,
        answer=checked.text,
        sources=cited,
        finalized_reason=finalized_reason,
        removed_citations=checked.removed,
        usage=state.usage,
        steps=step,
        tool_calls=state.tool_calls_used,
        seconds=max(0.0, time.time() - (state.started_at or time.time())),
    )
    update: StateUpdate = {"result": result, "draft": None, "pending": [], "streamed_answer": ""}
    update.update(deps.protocol.record_answer(state, checked.text))
    answer_turn = ChatTurn(role="assistant", content=checked.text, kind="answer")
    update["exchanges"] = [*state.exchanges, answer_turn]
    update["messages"] = [
        AIMessage(
            content=checked.text,
            id=f"{run_id}-answer",
            response_metadata={
                "sources": [s.model_dump() for s in cited],
                "finalized_reason": finalized_reason,
            },
            usage_metadata={
                "input_tokens": state.usage.prompt_tokens,
                "output_tokens": state.usage.completion_tokens,
                "total_tokens": state.usage.total_tokens,
            },
        )
    ]
    return update


def make_answer(deps: NodeDeps):
    async def answer(state: AgentState) -> StateUpdate:
        draft = state.draft or AnswerDraft(text="")
        return conclude(deps, state, draft, None)

    return answer
