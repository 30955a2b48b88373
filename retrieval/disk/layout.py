"""Where an index lives on disk, and how a new generation is published atomically.

Layout of an index directory::

    INDEX/
      store.sqlite       documents, passages, vectors, job progress (WAL; the source of truth)
      last-run.json      the last indexing run's report: counts, and each skipped file and why
      CURRENT            one line naming the published generation, e.g. ``gen-000003``
      gen-000003/        manifest.json, index.faiss, bm25/ (derived from the store)
      .staging-<pid>/    a generation being built; never read

Why a pointer file: the job builds a whole generation into ``.staging-*``, fsyncs it,
renames it to ``gen-N`` and only then replaces ``CURRENT`` with ``os.replace``, which is
atomic on POSIX. A reader reads ``CURRENT`` once and opens only that generation, so it sees
the old index or the new one, never a mix. Store rows carry the generation that added and
the one that removed them, so a reader of generation N also reads exactly N's passages from
SQLite while a job is writing N+1. The previous generation directory is kept until the next
publish, so a reader that read ``CURRENT`` just before a swap can still open it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from retrieval.errors import IndexNotFoundError, UnsafePathError

STORE_FILE = "store.sqlite"
CURRENT_FILE = "CURRENT"
LAST_RUN_FILE = "last-run.json"
MANIFEST_FILE = "manifest.json"
FAISS_FILE = "index.faiss"
BM25_DIR = "bm25"
_GEN_RE = re.compile(r"^gen-(\d{6,})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def generation_name(generation: int) -> str:
    return f"gen-{generation:06d}"


def index_path(root: Path | str, name: str) -> Path:
    """The directory of the index called `name` under `root`; refuses names that escape it."""
    root_path = Path(root).resolve()
    if not _NAME_RE.match(name) or ".." in name:
        raise UnsafePathError(
            f"index name {name!r} is not a plain name; use letters, digits, '.', '_' or '-' "
            "without path separators or '..'"
        )
    return inside(root_path, root_path / name, what=f"index name {name!r}")


def inside(root: Path, candidate: Path, *, what: str) -> Path:
    """`candidate` resolved, provided it stays under `root` (symlinks included)."""
    resolved = candidate.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise UnsafePathError(
            f"{what} points outside {root} ({resolved}); use a path inside the index directory "
            "or rebuild the index with `thinkrag index ... --rebuild`"
        )
    return resolved


def read_current(index_dir: Path) -> tuple[int, Path] | None:
    """The published generation number and its directory, or None before the first publish."""
    pointer = index_dir / CURRENT_FILE
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    match = _GEN_RE.match(name)
    if match is None:
        raise UnsafePathError(
            f"{pointer} names {name!r}, which is not a generation directory of this index; "
            "re-run `thinkrag index ... --rebuild` to rewrite it"
        )
    return int(match.group(1)), inside(index_dir, index_dir / name, what=f"{pointer}")


def generation_numbers(index_dir: Path) -> list[int]:
    """Numbers of the generation directories present (published or left by a crash)."""
    found = (_GEN_RE.match(child.name) for child in index_dir.iterdir())
    return sorted(int(m.group(1)) for m in found if m is not None)


def set_aside(store: Path) -> Path:
    """Rename a damaged store (and its WAL files) out of the way; returns the new name."""
    aside = store.with_name(f"{store.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{store}{suffix}")
        if part.exists():
            os.replace(part, Path(f"{aside}{suffix}"))
    return aside


def require_current(index_dir: Path) -> tuple[int, Path]:
    if not index_dir.is_dir():
        raise IndexNotFoundError(
            f"no index at {index_dir}; build one with `thinkrag index PATH --index {index_dir}`"
        )
    current = read_current(index_dir)
    if current is None:
        raise IndexNotFoundError(
            f"{index_dir} has no published index yet (no {CURRENT_FILE} file); run "
            f"`thinkrag index PATH --index {index_dir}` and let it finish"
        )
    return current


def new_staging_dir(index_dir: Path) -> Path:
    staging = index_dir / f".staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def publish(index_dir: Path, staging: Path, generation: int) -> Path:
    """Make `staging` the current generation: durable files, rename, then swap the pointer."""
    _fsync_tree(staging)
    final = index_dir / generation_name(generation)
    if final.exists():  # left by a job killed between rename and pointer swap
        shutil.rmtree(final)
    os.rename(staging, final)
    tmp = index_dir / f".{CURRENT_FILE}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(generation_name(generation) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)
    return final


def clean_old(index_dir: Path, current: int) -> None:
    """Remove generations older than the previous one, and abandoned staging dirs."""
    for child in index_dir.iterdir():
        match = _GEN_RE.match(child.name)
        old = match is not None and int(match.group(1)) < current - 1
        abandoned = child.name.startswith(".staging-") and not _pid_alive(child.name[9:])
        if old or abandoned:
            shutil.rmtree(child, ignore_errors=True)


def _pid_alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
