"""A resumed run continues from its last durable event instead of repeating the step (D2).

The agent resumes from its last checkpoint, which is the end of the last completed node,
so the node that was cut off runs again and re-emits what clients already received: the
run's first event, the step's reasoning, tool calls and results, the partial answer.
`ResumeFilter` is built from the events the store already holds for the run and passes
on only what is new:

- `run_started` once per run;
- reasoning of a step only past the characters already stored for that step;
- tool calls, tool results and citations once per call id / citation number;
- answer text only past what was already sent. When the re-run writes a different answer
  (a sampling model), the sent part cannot be taken back: the new answer follows it after
  a blank line and `run_finished.answer` says exactly that, so the answer deltas of a run
  always add up to its final answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from agent.events import (
    AnswerDelta,
    CitationEvent,
    Event,
    ReasoningDelta,
    RunFinished,
    RunStarted,
    ToolCallEvent,
    ToolResultEvent,
)


class ResumeFilter:
    def __init__(self, stored: Iterable[Event]) -> None:
        self._started = False
        self._reasoning: defaultdict[int, int] = defaultdict(int)  # chars stored per step
        self._calls: set[str] = set()
        self._results: set[str] = set()
        self._cited: set[int] = set()
        sent: list[str] = []
        for event in stored:
            if isinstance(event, RunStarted):
                self._started = True
            elif isinstance(event, ReasoningDelta):
                self._reasoning[event.step] += len(event.text)
            elif isinstance(event, ToolCallEvent):
                self._calls.add(event.call_id)
            elif isinstance(event, ToolResultEvent):
                self._results.add(event.call_id)
            elif isinstance(event, CitationEvent):
                self._cited.add(event.source.number)
            elif isinstance(event, AnswerDelta):
                sent.append(event.text)
        self._sent = "".join(sent)  # answer text clients have
        self._replayed = ""  # answer text the re-run produced so far
        self._replay_reasoning: defaultdict[int, int] = defaultdict(int)

    @property
    def sent_answer(self) -> str:
        return self._sent

    def admit(self, event: Event) -> list[Event]:
        """The events to store and send in place of `event` (often none)."""
        if isinstance(event, RunStarted):
            if self._started:
                return []
            self._started = True
            return [event]
        if isinstance(event, ReasoningDelta):
            before = self._replay_reasoning[event.step]
            self._replay_reasoning[event.step] += len(event.text)
            skip = max(0, self._reasoning[event.step] - before)
            if skip >= len(event.text):
                return []
            self._reasoning[event.step] += len(event.text) - skip
            return [event.model_copy(update={"text": event.text[skip:]})] if skip else [event]
        if isinstance(event, ToolCallEvent):
            return self._once(self._calls, event.call_id, event)
        if isinstance(event, ToolResultEvent):
            return self._once(self._results, event.call_id, event)
        if isinstance(event, CitationEvent):
            if event.source.number in self._cited:
                return []
            self._cited.add(event.source.number)
            return [event]
        if isinstance(event, AnswerDelta):
            return self._answer(event)
        if isinstance(event, RunFinished):
            return self._finish(event)
        return [event]

    @staticmethod
    def _once(seen: set[str], key: str, event: Event) -> list[Event]:
        if key in seen:
            return []
        seen.add(key)
        return [event]

    def _answer(self, event: AnswerDelta) -> list[Event]:
        self._replayed += event.text
        if self._sent.startswith(self._replayed):
            return []  # the re-run is still writing what clients already have
        if self._replayed.startswith(self._sent):
            new = self._replayed[len(self._sent) :]
            self._sent += new
            return [event.model_copy(update={"text": new})]
        return []  # diverged: settled at the end, once the whole new answer is known

    def _finish(self, event: RunFinished) -> list[Event]:
        answer, sent = event.answer, self._sent
        if answer == sent:
            return [event]
        if answer.startswith(sent):
            rest = AnswerDelta(run_id=event.run_id, step=event.step, text=answer[len(sent) :])
            return [rest, event]
        tail = f"\n\n{answer}"
        rest = AnswerDelta(run_id=event.run_id, step=event.step, text=tail)
        return [rest, event.model_copy(update={"answer": sent + tail})]
