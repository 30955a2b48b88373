"""Rich progress bars for an evaluation: index build, retrieval rows, questions."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from evaluation.records import QuestionResult
from evaluation.session import EvalHooks

if TYPE_CHECKING:
    from rich.progress import TaskID


class _IndexProgress:
    """Adapts the indexing job's progress port to a rich task."""

    def __init__(self, owner: RichProgress) -> None:
        self.owner = owner
        self.task: TaskID | None = None

    def scanned(self, documents: int) -> None:
        pass

    def embedding(self, total_passages: int) -> None:
        self.task = self.owner.bar.add_task("embedding passages", total=total_passages, status="")

    def advance(self, passages: int) -> None:
        if self.task is not None:
            self.owner.bar.advance(self.task, passages)

    def stage(self, name: str) -> None:
        self.owner.bar.console.log(name)

    def close(self) -> None:
        pass


class RichProgress:
    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            transient=False,
        )
        self.task: TaskID | None = None
        self.em_sum = 0.0
        self.done = 0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def _stage(self, name: str, total: int) -> None:
        self.task = self.bar.add_task(name, total=total, status="")

    def _advance(self) -> None:
        if self.task is not None:
            self.bar.advance(self.task)

    def _result(self, result: QuestionResult) -> None:
        self.done += 1
        self.em_sum += result.em
        if self.task is not None:
            status = f"EM {self.em_sum / self.done:.2f} (this run)"
            self.bar.update(self.task, status=status)

    def hooks(self) -> EvalHooks:
        return EvalHooks(
            index_progress=_IndexProgress(self),
            on_stage=self._stage,
            on_advance=self._advance,
            on_result=self._result,
        )
