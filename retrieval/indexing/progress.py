"""A rich progress display for the indexing job (rate and ETA over passages embedded)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichProgress:
    """Implements `retrieval.indexing.job_types.JobProgress` on a rich `Progress`."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._scan: TaskID | None = None
        self._embed: TaskID | None = None
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def scanned(self, documents: int) -> None:
        self._start()
        if self._scan is None:
            self._scan = self._progress.add_task("scanning documents", total=None, rate="")
        self._progress.update(self._scan, completed=documents)

    def embedding(self, total_passages: int) -> None:
        self._start()
        if self._scan is not None:
            self._progress.update(self._scan, total=self._progress.tasks[0].completed)
        self._embed = self._progress.add_task("embedding passages", total=total_passages, rate="")

    def advance(self, passages: int) -> None:
        if self._embed is None:
            return
        self._progress.advance(self._embed, passages)
        task = self._progress.tasks[-1]
        speed = task.speed
        self._progress.update(self._embed, rate=f"{speed:,.1f}/s" if speed else "")

    def stage(self, name: str) -> None:
        self._start()
        self._progress.add_task(name, total=None, rate="")

    def close(self) -> None:
        if self._started:
            for task in self._progress.tasks:
                if task.total is None:
                    self._progress.update(
                        task.id, total=max(task.completed, 1), completed=max(task.completed, 1)
                    )
            self._progress.stop()
            self._started = False
