"""The indexing job: documents -> passages -> vectors -> a published index generation.

Three phases, each safe to kill at any point:

1. scan: stream documents from the loaders, compare each one's content hash with the live
   version in the store, record new and changed documents (text kept until embedded) and
   hide changed or vanished ones from the next generation;
   each new document is chunked here, once, and its spans stored with it;
2. embed: embed ``title + "\\n" + passage text`` of the pending passages in batches on an
   `EmbedBackend` (this process, or Ray); each batch's passages and vectors commit in one
   transaction, so a rerun after SIGKILL skips every committed batch and embeds only what
   is missing;
3. publish: rebuild FAISS and BM25 from the store into a staging dir and swap it in
   atomically (see `retrieval.disk.layout`). When nothing changed, the published generation
   is still verified, and rebuilt from the store if it is damaged.

Memory stays bounded: nothing holds all texts or vectors; only ids and hashes per document.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from retrieval.disk.layout import STORE_FILE, generation_numbers, read_current, set_aside
from retrieval.disk.manifest import Manifest
from retrieval.disk.passage_writer import StoreWriter
from retrieval.disk.passages import corrupt_store
from retrieval.errors import (
    CorruptIndexError,
    EmptyCorpusError,
    RetrievalError,
    UnsafePathError,
)
from retrieval.indexing.embedding import EmbedBackend, LocalBackend
from retrieval.indexing.job_types import IndexConfig, IndexReport, JobProgress, NoProgress, Skipped
from retrieval.indexing.last_run import write_last_run
from retrieval.indexing.publish import publish_generation
from retrieval.indexing.scan import check_config, scan
from retrieval.types import Document, Embedder


class IndexBusyError(RetrievalError):
    pass


def run_index_job(
    paths: Sequence[Path | str],
    index_dir: Path | str,
    config: IndexConfig | None = None,
    *,
    embedder: Embedder | None = None,
    progress: JobProgress | None = None,
) -> IndexReport:
    """Index the documents under `paths` into `index_dir` (incremental, resumable, atomic)."""
    from retrieval.indexing.loaders import JsonlFields, load_paths

    config = config or IndexConfig()
    items = load_paths(
        paths,
        include=config.include,
        exclude=config.exclude,
        jsonl_fields=JsonlFields(
            id=config.jsonl_id, title=config.jsonl_title, text=config.jsonl_text
        ),
    )
    where = ", ".join(str(p) for p in paths)
    hint = f"no documents found under {where}; check the path and --include/--exclude globs"
    return index_documents(
        items, index_dir, config, embedder=embedder, progress=progress, empty_hint=hint
    )


def index_documents(
    items: Iterable[Document | Skipped],
    index_dir: Path | str,
    config: IndexConfig | None = None,
    *,
    embedder: Embedder | None = None,
    progress: JobProgress | None = None,
    empty_hint: str = "no documents to index; check the input paths",
) -> IndexReport:
    """The job over already-loaded items: `Document`s, and `Skipped` records for files
    that could not be read (reported, and their last good version kept)."""
    config = config or IndexConfig()
    progress = progress or NoProgress()
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise UnsafePathError(
            f"--index {index_dir} is a file, not a directory; pass a new or existing "
            "index directory"
        )
    index_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    spec = config.embedder_spec
    ship_embedder = embedder is not None
    if embedder is None:
        from retrieval.embedders import DEFAULT_EMBEDDER, load_embedder

        spec = spec or DEFAULT_EMBEDDER
        t_load = time.perf_counter()
        embedder = load_embedder(spec, cache_dir=config.model_cache)
        load_seconds = time.perf_counter() - t_load
    else:
        load_seconds = 0.0
    spec = spec or embedder.id
    with _job_lock(index_dir):
        store = _open_store(index_dir / STORE_FILE, rebuild=config.rebuild)
        try:
            published, target = _generations(index_dir, store)
            report = IndexReport(index_dir=str(index_dir), generation=target, published=False)
            report.embedder_id = embedder.id
            report.load_seconds = load_seconds
            check_config(store, embedder, config, target, spec)
            t_scan = time.perf_counter()
            scan(store, items, config, target, report, progress)
            report.scan_seconds = time.perf_counter() - t_scan
            if not store.has_live_documents():
                raise EmptyCorpusError(empty_hint)
            t_embed = time.perf_counter()
            backend = _backend(embedder, spec, config, ship_embedder=ship_embedder)
            progress.embedding(store.pending_passage_count())
            for passages, vectors in backend.embed(store.pending_passages()):
                store.commit_batch(passages, vectors, target)
                report.passages_embedded += len(passages)
                progress.advance(len(passages))
            report.embed_seconds = time.perf_counter() - t_embed
            manifest = None if config.rebuild else _intact_manifest(index_dir, published)
            if manifest is None or store.has_changes_for(target):
                progress.stage("building index")
                t_publish = time.perf_counter()
                manifest = publish_generation(store, index_dir, target, embedder, spec, config)
                report.publish_seconds = time.perf_counter() - t_publish
                report.published = True
            else:
                report.generation = target - 1
            report.factory = manifest.factory
            report.documents = manifest.documents
            report.passages = manifest.passages
        except sqlite3.DatabaseError as exc:
            raise corrupt_store(store.path, exc) from exc
        finally:
            store.close()
            progress.close()
        report.seconds = time.perf_counter() - started
        write_last_run(index_dir, report)  # still under the lock: the report of this run
    return report


def _backend(
    embedder: Embedder, spec: str, config: IndexConfig, *, ship_embedder: bool
) -> EmbedBackend:
    if config.ray_address is None:
        return LocalBackend(embedder, config.batch_size)
    from retrieval.indexing.ray_backend import RayBackend

    return RayBackend(
        config.ray_address,
        embedder,
        spec,
        batch_size=config.batch_size,
        concurrency=config.ray_concurrency,
        ship_embedder=ship_embedder,
        model_cache=config.model_cache,
    )


def _open_store(path: Path, *, rebuild: bool) -> StoreWriter:
    """The writable store; under --rebuild a damaged one is set aside for a fresh one."""
    store: StoreWriter | None = None
    try:
        store = StoreWriter(path)
        if rebuild:
            store.check_integrity()
        return store
    except CorruptIndexError:
        if store is not None:
            store.close()
        if not rebuild:
            raise
        set_aside(path)
        return StoreWriter(path)


def _generations(index_dir: Path, store: StoreWriter) -> tuple[int | None, int]:
    """(the published generation or None, the generation this job writes). `CURRENT` is
    derived from the store, so a damaged one is rewritten by this job's publish."""
    try:
        current = read_current(index_dir)
    except UnsafePathError:
        highest = max(generation_numbers(index_dir), default=0)
        return None, max(highest + 1, store.max_generation(), 1)
    if current is None:
        return None, 1
    return current[0], current[0] + 1


def _intact_manifest(index_dir: Path, published: int | None) -> Manifest | None:
    """The published generation's manifest when it opens cleanly (FAISS checksum, BM25,
    store counts), else None: a damaged generation is rebuilt even when nothing changed."""
    from retrieval.disk.generation import open_index

    if published is None:
        return None
    try:
        return open_index(index_dir).manifest
    except (CorruptIndexError, UnsafePathError):
        return None


@contextmanager
def _job_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index; the OS drops the lock when a killed job's process dies."""
    fd = os.open(index_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusyError(
                f"another `thinkrag index` job is writing {index_dir}; wait for it to finish"
            ) from exc
        yield
    finally:
        os.close(fd)
