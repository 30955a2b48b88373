"""Walking a corpus folder without leaving it, and without passing anything over silently.

Every entry the walk does not read becomes a `Skipped` with its reason and the fix, except
hidden names (a leading dot: `.git`, editor files), which are skipped by design. Symbolic
links are never followed out of the corpus (a link to /etc/passwd must not become
searchable); a file link inside it is read, a folder link is not followed (no loops, no
double indexing). Only regular files are opened, and they are opened non-blocking, so a
FIFO or a device (`/dev/zero`) can neither hang the job nor fill its memory. The walk keeps
its own stack, so deep trees cannot exhaust Python's recursion limit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

from retrieval.indexing.job_types import Skipped

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def printable(name: str) -> str:
    """A file name as text that can be shown and stored: undecodable bytes as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def bad_name(name: str) -> str | None:
    """The reason to skip a path whose name is not valid UTF-8 (None when it is)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "the name is not valid UTF-8, so it cannot be recorded or cited; rename it "
            "(e.g. `convmv -f latin1 -t utf-8 --notest NAME`)"
        )
    return None


def _matches(rel: str, pattern: str) -> bool:
    if fnmatchcase(rel, pattern):
        return True
    return pattern.startswith("**/") and _matches(rel, pattern[3:])


def selected(rel: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if include and not any(_matches(rel, p) for p in include):
        return False
    return not any(_matches(rel, p) for p in exclude)


def _entries(folder: Path, rel: str) -> list[os.DirEntry[str]] | Skipped:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        return Skipped(
            printable(rel or str(folder)),
            f"cannot read folder ({exc.strerror or exc}); check its permissions",
        )


def _link(entry: os.DirEntry[str], rel: str, real_root: Path) -> Path | Skipped:
    """The file a symbolic link inside the corpus points to, or why it is not followed."""
    try:
        target = Path(entry.path).resolve(strict=True)
    except FileNotFoundError:
        return Skipped(rel, "dangling symbolic link (its target does not exist); fix or remove it")
    except (OSError, RuntimeError):
        return Skipped(rel, "symbolic link loop; not followed (fix or remove the link)")
    if target != real_root and real_root not in target.parents:
        return Skipped(
            rel,
            f"symbolic link to {printable(str(target))}, outside the corpus; not followed "
            "(copy the file into the corpus to index it)",
        )
    if target.is_dir():
        return Skipped(
            rel, "symbolic link to a folder; not followed (pass that folder as a path instead)"
        )
    return target


def walk(
    root: Path, include: tuple[str, ...], exclude: tuple[str, ...]
) -> Iterator[tuple[Path, str] | Skipped]:
    """(file to read, name relative to `root`) in depth-first name order, or `Skipped`."""
    real_root = root.resolve()
    first = _entries(root, "")
    if isinstance(first, Skipped):
        yield first
        return
    stack: list[tuple[Iterator[os.DirEntry[str]], str]] = [(iter(first), "")]
    while stack:
        entries, prefix = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        rel = prefix + entry.name
        reason = bad_name(entry.name)
        if reason is not None:
            yield Skipped(printable(rel), reason)
            continue
        try:
            if entry.is_symlink():
                target = _link(entry, rel, real_root)
                if isinstance(target, Skipped):
                    yield target
                    continue
                mode = target.stat().st_mode
                path = target
            else:
                mode = entry.stat(follow_symlinks=False).st_mode
                path = Path(entry.path)
        except OSError as exc:
            yield Skipped(rel, f"cannot read ({exc.strerror or exc}); check its permissions")
            continue
        if stat.S_ISDIR(mode):
            sub = _entries(path, rel)
            if isinstance(sub, Skipped):
                yield sub
            else:
                stack.append((iter(sub), rel + "/"))
        elif not selected(rel, include, exclude):
            continue
        elif stat.S_ISREG(mode):
            yield path, rel
        else:
            yield Skipped(rel, f"{kind_of(mode)}, not a regular file; only files are indexed")
