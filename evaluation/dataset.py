"""Loader for the multi-hop QA eval file (HotpotQA, 2WikiMultihopQA, MuSiQue dev questions).

The eval data lives outside the repository (`../shared/eval`, see `corpora.paths`). Each
question carries its own gold and distractor passages; the standard open-corpus setting
pools the unique passages of every question into one corpus and answers each question
against the whole pool. Pooled passages get a stable id (sha1 of ``title + "\n" + text``),
so gold ids can be compared with whatever an index returns as `doc_id`.

Decision on titles: a pooled `Document` keeps the passage text in `text` and the title in
`title`, exactly like every other loader. Many passages only make sense with their title
(the title is often the entity the text is about), so whoever indexes this pool must embed
and BM25-index ``title + "\n" + text`` (the passage title prefixed), as the eval data's
README prescribes.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from evaluation.errors import EvalDataFormatError, EvalDataMissingError, UnknownDatasetError
from retrieval.types import Document

KNOWN_DATASETS: frozenset[str] = frozenset({"hotpotqa", "2wikimultihopqa", "musique"})
SOURCE_PREFIX = "multihop:"


class _Record(BaseModel):
    # Unknown fields are ignored so a newer export with extra keys still loads.
    model_config = ConfigDict(frozen=True, extra="ignore")


class EvalPassage(_Record):
    title: str
    text: str
    supporting: bool


class EvalMeta(_Record):
    level: str | None = None
    sources: tuple[str, ...] = ()
    id_is_original: bool = True


class EvalQuestion(_Record):
    id: str
    dataset: str
    question: str
    answers: tuple[str, ...]
    type: str | None = None
    passages: tuple[EvalPassage, ...]
    meta: EvalMeta = EvalMeta()


@dataclass(frozen=True, slots=True)
class PooledPassage:
    """One unique passage of the pooled corpus."""

    id: str  # passage_key(title, text)
    title: str
    text: str


def passage_key(title: str, text: str) -> str:
    """Stable id of a passage: first 16 hex digits of sha1(title + "\\n" + text)."""
    return hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]


def read_questions(
    path: Path | str,
    *,
    limit: int | None = None,
    datasets: Iterable[str] | None = None,
) -> list[EvalQuestion]:
    """Read questions in file order, optionally only some datasets and at most `limit`."""
    path = Path(path)
    wanted = _check_datasets(datasets)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    if not path.is_file():
        raise EvalDataMissingError(path)
    questions: list[EvalQuestion] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if limit is not None and len(questions) >= limit:
                break
            if not line.strip():
                continue
            question = _parse_line(path, line_no, line)
            if wanted is None or question.dataset in wanted:
                questions.append(question)
    return questions


def sample_questions(
    questions: Sequence[EvalQuestion], n: int, *, seed: int = 0
) -> list[EvalQuestion]:
    """A seeded sample of `n` questions with each dataset's share kept, in file order.

    The dev file is grouped by dataset, so its first N lines are one dataset only; this is
    the small run that still says something about all three. Shares are rounded by largest
    remainder, so the counts add up to exactly `n`, and every dataset gets at least one
    question when `n` is at least the number of datasets.
    """
    if n < 1:
        raise ValueError(f"sample size must be >= 1, got {n}")
    if n >= len(questions):
        return list(questions)
    groups: dict[str, list[int]] = {}
    for i, question in enumerate(questions):
        groups.setdefault(question.dataset, []).append(i)
    exact = {name: n * len(idx) / len(questions) for name, idx in groups.items()}
    counts = {name: int(share) for name, share in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (counts[name] - exact[name], name))
    for name in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    # Every dataset gets a question when n allows: a small sample should still touch all.
    for name in sorted(counts, key=lambda name: exact[name]):
        if counts[name] == 0 and n >= len(counts):
            counts[max(counts, key=lambda other: counts[other])] -= 1
            counts[name] = 1
    rng = random.Random(seed)
    chosen: set[int] = set()
    for name in sorted(groups):
        chosen.update(rng.sample(groups[name], counts[name]))
    return [questions[i] for i in sorted(chosen)]


def pool_passages(questions: Iterable[EvalQuestion]) -> list[PooledPassage]:
    """Unique passages of all questions, deduplicated by (title, text), first-seen order."""
    pooled: dict[str, PooledPassage] = {}
    for question in questions:
        for passage in question.passages:
            key = passage_key(passage.title, passage.text)
            if key not in pooled:
                pooled[key] = PooledPassage(id=key, title=passage.title, text=passage.text)
    return list(pooled.values())


def pooled_documents(questions: Iterable[EvalQuestion]) -> Iterator[Document]:
    """One `Document` per pooled passage; indexing must prefix the title (module docstring)."""
    for passage in pool_passages(questions):
        content_hash = hashlib.sha256((passage.text + passage.title).encode()).hexdigest()
        yield Document(
            doc_id=passage.id,
            title=passage.title,
            text=passage.text,
            source=f"{SOURCE_PREFIX}{passage.id}",
            metadata={"content_hash": content_hash},
        )


def gold_ids(question: EvalQuestion) -> set[str]:
    """Stable ids of the question's supporting passages (the retrieval recall target)."""
    return {passage_key(p.title, p.text) for p in question.passages if p.supporting}


def write_pooled_jsonl(
    questions: Sequence[EvalQuestion] | Iterable[EvalQuestion], out_path: Path | str
) -> int:
    """Write the pool as id/title/text jsonl for `thinkrag index`; returns the line count."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for passage in pool_passages(questions):
            record = {"id": passage.id, "title": passage.title, "text": passage.text}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(out_path)  # atomic: a concurrent indexer never reads half a file
    return count


def _check_datasets(datasets: Iterable[str] | None) -> frozenset[str] | None:
    if datasets is None:
        return None
    wanted = frozenset(datasets)
    unknown = set(wanted - KNOWN_DATASETS)
    if unknown:
        raise UnknownDatasetError(unknown, KNOWN_DATASETS)
    return wanted


def _parse_line(path: Path, line_no: int, line: str) -> EvalQuestion:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EvalDataFormatError(path, line_no, f"invalid JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise EvalDataFormatError(path, line_no, f"expected an object, got {type(raw).__name__}")
    try:
        return EvalQuestion.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise EvalDataFormatError(path, line_no, f"{where}: {first['msg']}") from exc
