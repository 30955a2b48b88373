"""`INDEX/last-run.json`: the report of the last indexing run, kept beside the index.

A run's report (counts, and every file or line it skipped with the reason) used to exist
only in the terminal that ran the job; kept on disk, a server of the index can show it
later (the console's corpus panel lists the skipped files). It describes the run, not the
published generation, so it is informational: a missing or unreadable file is None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from retrieval.disk.layout import LAST_RUN_FILE
from retrieval.indexing.job_types import IndexReport


@dataclass(frozen=True, slots=True)
class LastRun:
    finished_at: str  # ISO 8601, UTC
    report: IndexReport


@cache
def _adapter() -> TypeAdapter[LastRun]:
    return TypeAdapter(LastRun)


def write_last_run(index_dir: Path, report: IndexReport) -> None:
    """Replace the file with this run's report, atomically (a reader sees old or new)."""
    record = LastRun(datetime.now(UTC).isoformat(timespec="seconds"), report)
    tmp = index_dir / f".{LAST_RUN_FILE}.{os.getpid()}.tmp"
    tmp.write_bytes(_adapter().dump_json(record, indent=2) + b"\n")
    os.replace(tmp, index_dir / LAST_RUN_FILE)


def read_last_run(index_dir: Path) -> LastRun | None:
    """The last run's record, or None before any run wrote one (an index built by an older
    version) or when the file cannot be read."""
    try:
        return _adapter().validate_json((index_dir / LAST_RUN_FILE).read_bytes())
    except (OSError, ValidationError):
        return None
