"""The indexing job: documents -> passages -> vectors -> a published index generation.

Three phases, each safe to kill at any point:

1. scan: stream documents from the loaders, compare each one's content hash with the live
   version in the store, record new and changed documents (text kept until embedded) and
   hide changed or vanished ones from the next generation;
2. embed: chunk pending documents and embed ``title + "\\n" + passage text`` in batches;
   each batch's passages and vectors commit in one transaction, so a rerun after SIGKILL
   skips every committed batch and embeds only what is missing;
3. publish: rebuild FAISS and BM25 from the store into a staging dir and swap it in
   atomically (see `retrieval.disk.layout`).

Memory stays bounded: nothing holds all texts or vectors; only ids and hashes per document.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retrieval.disk.layout import STORE_FILE, read_current
from retrieval.disk.passages import NewPassage, StoreWriter, dumps_config
from retrieval.errors import EmptyCorpusError, ManifestMismatchError, RetrievalError
from retrieval.indexing.embedding import embed_passages
from retrieval.indexing.job_types import (
    IndexConfig,
    IndexReport,
    JobProgress,
    NoProgress,
    SkippedFile,
)
from retrieval.indexing.publish import publish_generation, unpublished_changes
from retrieval.types import Document, Embedder

SCAN_COMMIT_EVERY = 200


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
    items: Iterable[Any],
    index_dir: Path | str,
    config: IndexConfig | None = None,
    *,
    embedder: Embedder | None = None,
    progress: JobProgress | None = None,
    empty_hint: str = "no documents to index; check the input paths",
) -> IndexReport:
    """The job over already-loaded items: `Document`s, and anything with `source`/`reason`
    (the loaders' `Skipped`) for files that could not be read."""
    config = config or IndexConfig()
    progress = progress or NoProgress()
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    spec = config.embedder_spec
    ship_embedder = embedder is not None
    if embedder is None:
        from retrieval.embedders import DEFAULT_EMBEDDER, load_embedder

        spec = spec or DEFAULT_EMBEDDER
        embedder = load_embedder(spec)
    spec = spec or embedder.id
    with _job_lock(index_dir):
        store = StoreWriter(index_dir / STORE_FILE)
        try:
            current = read_current(index_dir)
            target = (current[0] if current else 0) + 1
            report = IndexReport(index_dir=str(index_dir), generation=target, published=False)
            report.embedder_id = embedder.id
            _check_config(store, embedder, config, target)
            _scan(store, items, config, target, report, progress)
            if not store.conn.execute(
                "SELECT 1 FROM versions WHERE gen_removed IS NULL LIMIT 1"
            ).fetchone():
                raise EmptyCorpusError(empty_hint)
            t_embed = time.perf_counter()
            if config.ray_address:
                from retrieval.indexing.ray_backend import embed_pending_with_ray

                embed_pending_with_ray(
                    store,
                    embedder,
                    spec,
                    config,
                    target,
                    progress,
                    report,
                    ship_embedder=ship_embedder,
                )
            else:
                _embed_pending(store, embedder, config, target, progress, report)
            report.embed_seconds = time.perf_counter() - t_embed
            if unpublished_changes(store, target) or current is None or config.rebuild:
                progress.stage("building index")
                manifest = publish_generation(store, index_dir, target, embedder, spec, config)
                report.published = True
            else:
                from retrieval.disk.generation import current_manifest

                manifest = current_manifest(index_dir)
                report.generation = target - 1
            report.factory = manifest.factory
            report.documents = manifest.documents
            report.passages = manifest.passages
        finally:
            store.close()
            progress.close()
    report.seconds = time.perf_counter() - started
    return report


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


def _config_dict(embedder: Embedder, config: IndexConfig) -> dict[str, object]:
    from retrieval.disk.lexical import tokenizer_id

    return {
        "embedder_id": embedder.id,
        "dim": embedder.dim,
        "max_tokens": config.max_tokens,
        "overlap_tokens": config.overlap_tokens,
        "bm25_tokenizer": tokenizer_id(),
    }


def _check_config(store: StoreWriter, embedder: Embedder, config: IndexConfig, target: int) -> None:
    """Stored vectors are only reusable under the settings that made them."""
    wanted = dumps_config(_config_dict(embedder, config))
    stored = store.get_meta("config")
    if stored is not None and stored != wanted and not config.rebuild:
        import json

        old = json.loads(stored)
        diffs = ", ".join(
            f"{key} {old.get(key)!r} -> {value!r}"
            for key, value in json.loads(wanted).items()
            if old.get(key) != value
        )
        raise ManifestMismatchError(
            f"this index was built with different settings ({diffs}); pass --rebuild to "
            f"re-embed everything, or run with the old settings (e.g. --embedder "
            f"{old.get('embedder_id')})"
        )
    store.conn.execute("BEGIN IMMEDIATE")
    if config.rebuild:
        for version in store.live_versions().values():
            # keep what this same rebuild already embedded under the same settings
            if version.gen_added < target or stored != wanted:
                store.remove_version(version.version_id, target)
    store.set_meta("config", wanted)
    store.conn.execute("COMMIT")


def _content_hash(doc: Document) -> str:
    given = doc.metadata.get("content_hash")
    if given:
        return given
    return hashlib.sha256((doc.title + "\x00" + doc.text).encode()).hexdigest()


def _scan(
    store: StoreWriter,
    items: Iterable[Any],
    config: IndexConfig,
    target: int,
    report: IndexReport,
    progress: JobProgress,
) -> None:
    from retrieval.indexing.chunking import chunk_text

    live = store.live_versions()
    seen: dict[str, str] = {}
    since_commit = 0
    store.conn.execute("BEGIN IMMEDIATE")
    for item in items:
        if not isinstance(item, Document):
            report.skipped.append(SkippedFile(str(item.source), str(item.reason)))
            continue
        report.documents_read += 1
        progress.scanned(report.documents_read)
        if item.doc_id in seen:
            report.skipped.append(
                SkippedFile(
                    item.source, f"duplicate document id {item.doc_id!r} (also {seen[item.doc_id]})"
                )
            )
            continue
        seen[item.doc_id] = item.source
        digest = _content_hash(item)
        existing = live.get(item.doc_id)
        if existing is not None and existing.content_hash == digest:
            if existing.gen_added == target:  # recorded by an interrupted run of this job
                report.added += 1
            else:
                report.unchanged += 1
            continue
        if existing is not None:
            store.remove_version(existing.version_id, target)
            report.updated += 1
        else:
            report.added += 1
        spans = chunk_text(
            item.text, max_tokens=config.max_tokens, overlap_tokens=config.overlap_tokens
        )
        store.add_version(
            doc_id=item.doc_id,
            content_hash=digest,
            title=item.title,
            source=item.source,
            text=item.text,
            n_passages=len(spans),
            generation=target,
        )
        since_commit += 1
        if since_commit >= SCAN_COMMIT_EVERY:
            store.conn.execute("COMMIT")
            store.conn.execute("BEGIN IMMEDIATE")
            since_commit = 0
    unreadable = {s.source for s in report.skipped}
    for doc_id, version in live.items():
        if doc_id in seen:
            continue
        source = store.conn.execute(
            "SELECT source FROM versions WHERE version_id=?", (version.version_id,)
        ).fetchone()
        if source is not None and source[0] in unreadable:
            continue  # unreadable this time: keep the last good version rather than drop it
        store.remove_version(version.version_id, target)
        report.removed += 1
    store.conn.execute("COMMIT")


def pending_passages(
    store: StoreWriter, config: IndexConfig
) -> Iterator[tuple[NewPassage | None, int | None]]:
    """Missing passages of pending documents in order; `(None, version_id)` marks the end of
    a document, after all its passages."""
    from retrieval.indexing.chunking import chunk_text

    for version_id in store.pending_version_ids():
        pending = store.pending_version(version_id)
        have = store.existing_ordinals(version_id)
        spans = chunk_text(
            pending.text, max_tokens=config.max_tokens, overlap_tokens=config.overlap_tokens
        )
        for ordinal, span in enumerate(spans):
            if ordinal in have:
                continue
            yield (
                NewPassage(
                    version_id=version_id,
                    doc_id=pending.doc_id,
                    content_hash=pending.content_hash,
                    title=pending.title,
                    ordinal=ordinal,
                    start=span.start,
                    end=span.end,
                    text=pending.text[span.start : span.end],
                ),
                None,
            )
        yield None, version_id


def _embed_pending(
    store: StoreWriter,
    embedder: Embedder,
    config: IndexConfig,
    target: int,
    progress: JobProgress,
    report: IndexReport,
) -> None:
    progress.embedding(store.pending_passage_count())
    batch: list[NewPassage] = []
    finished: list[int] = []

    def flush() -> None:
        vectors = embed_passages(embedder, [(p.title, p.text) for p in batch])
        store.commit_batch(batch, vectors, finished, target)
        report.passages_embedded += len(batch)
        progress.advance(len(batch))
        batch.clear()
        finished.clear()

    for passage, done in pending_passages(store, config):
        if passage is not None:
            batch.append(passage)
            if len(batch) >= config.batch_size:
                flush()
        elif done is not None:
            finished.append(done)
    if batch or finished:
        flush()
