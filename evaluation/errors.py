"""Typed failures of the corpus loaders; each message says what went wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path


class CorpusError(Exception):
    """Base of every error raised by `corpora`."""


class EvalDataMissingError(CorpusError, FileNotFoundError):
    """The multi-hop eval file is not where the caller said it is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"multi-hop eval file not found: {path}. The eval data lives outside the repository "
            "in ../shared/eval (next to the repo root) and is never copied into it; pass the "
            "path of multihop_dev.jsonl there, or set THINKRAG_EVAL_DIR to its folder."
        )


class EvalDataFormatError(CorpusError, ValueError):
    """A line of the eval file is not a valid question record."""

    def __init__(self, path: Path, line_no: int, problem: str) -> None:
        self.path = path
        self.line_no = line_no
        self.problem = problem
        super().__init__(
            f"{path}, line {line_no}: not a valid multi-hop question record ({problem}). "
            "Each line must be one JSON object with id, dataset, question, answers, type, "
            "passages [{title, text, supporting}] and meta; fix or remove that line."
        )


class UnknownDatasetError(CorpusError, ValueError):
    """A dataset filter names a dataset the eval file format does not define."""

    def __init__(self, unknown: set[str], known: frozenset[str]) -> None:
        self.unknown = unknown
        super().__init__(f"unknown dataset name(s) {sorted(unknown)}; choose from {sorted(known)}.")
