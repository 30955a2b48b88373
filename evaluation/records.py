"""Per-question result records: one JSON line each in `results.jsonl`, read back on resume."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError


class QuestionResult(BaseModel):
    """What one method did on one question, with its scores."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    dataset: str
    method: str
    question: str
    answers: list[str]
    prediction: str = ""
    answer: str | None = None  # the full reply (the prediction is its scoreable span)
    em: float = 0.0
    f1: float = 0.0
    gold: list[str] = []
    retrieved: list[str] = []  # doc ids in first-seen order, over every step
    cited: list[str] = []
    supporting_recall: float | None = None  # None for methods that retrieve nothing
    all_gold: bool | None = None
    citation_precision: float | None = None
    citation_validity: float | None = None
    steps: int = 0
    searches: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    seconds: float = 0.0
    failure: str | None = None  # stable kind, e.g. "model_timeout"; None when it answered
    error: str | None = None
    finalized_reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.id)


def read_results(path: Path) -> list[QuestionResult]:
    """Results already written; a torn last line (killed mid-write) is ignored."""
    if not path.is_file():
        return []
    results: list[QuestionResult] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                results.append(QuestionResult.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValidationError):
                continue
    return results


def end_torn_line(path: Path) -> None:
    """Terminate a last line cut by a kill, so the next append starts a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, 2)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def append_result(path: Path, result: QuestionResult) -> None:
    """Append one line and flush it, so a kill loses at most the question in flight."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(result.model_dump_json() + "\n")
        fh.flush()


def latest_by_key(results: Iterable[QuestionResult]) -> dict[tuple[str, str], QuestionResult]:
    """The last record per (method, question id): a rerun's record supersedes older ones."""
    return {r.key: r for r in results}
