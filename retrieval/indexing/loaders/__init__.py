"""Turn files and folders into `Document`s: txt, md, html, jsonl and pdf.

A bad file never stops a load: it becomes a `Skipped` record with the reason, so an
indexing job can report it and carry on. Only a path that does not exist raises.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.indexing.job_types import Skipped, content_hash
from retrieval.indexing.loaders.formats import (
    JsonlFields,
    Unreadable,
    read_jsonl,
    read_markdown,
    read_pdf,
    read_plain,
)
from retrieval.indexing.loaders.html import read_html
from retrieval.indexing.loaders.walk import bad_name, kind_of, printable, walk
from retrieval.types import Document

# extension -> format name recorded in metadata["format"]
FORMATS: dict[str, str] = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".pdf": "pdf",
}


def load_paths(
    paths: Sequence[Path | str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    jsonl_fields: JsonlFields = JsonlFields(),
) -> Iterator[Document | Skipped]:
    """Documents from files and folders (recursively, sorted, hidden entries skipped).

    `include`/`exclude` are glob patterns matched against the path relative to the folder
    given (`**/` also matches at the top level); they filter folder contents, while files
    named directly are always read. Raises `RetrievalError` up front for a missing path.
    """
    roots = [Path(p).expanduser() for p in paths]
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        raise RetrievalError(
            f"path(s) not found: {', '.join(missing)}; pass existing files or folders"
        )
    return _iterate(roots, tuple(include), tuple(exclude), jsonl_fields)


def _iterate(
    roots: list[Path], include: tuple[str, ...], exclude: tuple[str, ...], fields: JsonlFields
) -> Iterator[Document | Skipped]:
    for root in roots:
        if root.is_dir():
            for found in walk(root, include, exclude):
                if isinstance(found, Skipped):
                    yield found
                else:
                    yield from load_file(*found, fields)
        else:
            yield from load_file(root, root.name, fields)


def _read_regular(path: Path) -> tuple[bytes, float]:
    """A regular file's bytes and mtime. Opened non-blocking and checked after opening,
    so a FIFO or device (named directly, or swapped in after the walk) is refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{kind_of(info.st_mode)}, not a regular file; only files are indexed")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(), info.st_mtime
    finally:
        os.close(fd)


def load_file(path: Path, source: str, fields: JsonlFields) -> Iterator[Document | Skipped]:
    """Documents from one file; `source` is the name it is recorded under."""
    bad = bad_name(source)
    if bad is not None:
        yield Skipped(printable(source), bad)
        return
    suffix = path.suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        kind = f"unsupported file type {suffix}" if suffix else "unsupported file (no extension)"
        yield Skipped(source, f"{kind}; supported: {', '.join(sorted(FORMATS))}")
        return
    try:
        data, mtime = _read_regular(path)
        if fmt == "jsonl":
            yield from _jsonl_documents(data, source, fields, mtime)
            return
        reader = {"txt": read_plain, "md": read_markdown, "html": read_html, "pdf": read_pdf}[fmt]
        yield _document(source, source, *reader(data, path.stem), fmt, mtime)
    except Unreadable as exc:
        yield Skipped(source, str(exc))
    except OSError as exc:
        yield Skipped(source, f"cannot read file ({exc.strerror or exc}); check its permissions")


def _jsonl_documents(
    data: bytes, source: str, fields: JsonlFields, mtime: float
) -> Iterator[Document | Skipped]:
    seen: set[str] = set()
    for record in read_jsonl(data, fields):
        where = f"{source}:{record.line}"
        if record.error:
            yield Skipped(where, record.error)
            continue
        if record.record_id in seen:
            yield Skipped(
                where,
                f"line {record.line}: duplicate id {record.record_id!r}; ids must be unique "
                f"within a file (set jsonl_fields.id to a unique key)",
            )
            continue
        seen.add(record.record_id)
        doc_id = f"{source}#{record.record_id}"
        try:
            yield _document(doc_id, source, record.title, record.text, "jsonl", mtime)
        except Unreadable as exc:
            yield Skipped(where, f"line {record.line}: {exc}")


def _document(doc_id: str, source: str, title: str, text: str, fmt: str, mtime: float) -> Document:
    if not text.strip():
        raise Unreadable("no text to index (the file is empty or holds only markup)")
    stamp = datetime.fromtimestamp(mtime, tz=UTC).isoformat(timespec="seconds")
    return Document(
        doc_id=doc_id,
        title=title,
        text=text,
        source=source,
        metadata={"content_hash": content_hash(title, text), "format": fmt, "mtime": stamp},
    )


__all__ = ["FORMATS", "JsonlFields", "Skipped", "content_hash", "load_file", "load_paths"]
