"""The scan phase: loaded documents -> new, changed and vanished versions in the store.

Each new or changed document is chunked here, once; its spans go into the store with it,
so the embed phase (local or on Ray) only slices and embeds. The counts in the report come
from the store, not from this run's loop, so a job resumed after a kill reports what the
whole generation changed (an interrupted run's work is not recounted as "added").
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from retrieval.disk.lexical import tokenizer_id
from retrieval.disk.passage_writer import StoreWriter
from retrieval.disk.passages import dumps_config
from retrieval.errors import ManifestMismatchError
from retrieval.indexing.chunking import chunk_text
from retrieval.indexing.job_types import (
    IndexConfig,
    IndexReport,
    JobProgress,
    Skipped,
    document_hash,
)
from retrieval.types import Document, Embedder

SCAN_COMMIT_EVERY = 200


def config_dict(embedder: Embedder, config: IndexConfig) -> dict[str, object]:
    return {
        "embedder_id": embedder.id,
        "dim": embedder.dim,
        "max_tokens": config.max_tokens,
        "overlap_tokens": config.overlap_tokens,
        "bm25_tokenizer": tokenizer_id(),
    }


def check_config(store: StoreWriter, embedder: Embedder, config: IndexConfig, target: int) -> None:
    """Stored vectors are only reusable under the settings that made them."""
    wanted = dumps_config(config_dict(embedder, config))
    stored = store.get_meta("config")
    if stored is not None and stored != wanted and not config.rebuild:
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
    with store.transaction():
        if config.rebuild:
            for version in store.live_versions().values():
                # keep what this same rebuild already embedded under the same settings
                if version.gen_added < target or stored != wanted:
                    store.remove_version(version.version_id, target)
        store.set_meta("config", wanted)


def scan(
    store: StoreWriter,
    items: Iterable[Document | Skipped],
    config: IndexConfig,
    target: int,
    report: IndexReport,
    progress: JobProgress,
) -> None:
    """Record new and changed documents for generation `target`, hide vanished ones."""
    live = store.live_versions()
    seen: dict[str, str] = {}
    since_commit = 0
    with store.transaction():
        for item in items:
            if isinstance(item, Skipped):
                report.skipped.append(item)
                continue
            report.documents_read += 1
            progress.scanned(report.documents_read)
            if item.doc_id in seen:
                also = seen[item.doc_id]
                report.skipped.append(
                    Skipped(item.source, f"duplicate document id {item.doc_id!r} (also {also})")
                )
                continue
            seen[item.doc_id] = item.source
            digest = document_hash(item)
            existing = live.get(item.doc_id)
            # (a pending version from a store written before spans were kept is re-chunked)
            if (
                existing is not None
                and existing.content_hash == digest
                and (existing.complete or store.has_spans(existing.version_id))
            ):
                continue
            if existing is not None:
                store.remove_version(existing.version_id, target)
            spans = chunk_text(
                item.text, max_tokens=config.max_tokens, overlap_tokens=config.overlap_tokens
            )
            store.add_version(
                doc_id=item.doc_id,
                content_hash=digest,
                title=item.title,
                source=item.source,
                text=item.text,
                spans=[(s.start, s.end) for s in spans],
                generation=target,
            )
            since_commit += 1
            if since_commit >= SCAN_COMMIT_EVERY:
                store.checkpoint()
                since_commit = 0
        unreadable = {s.source for s in report.skipped}
        for doc_id, version in live.items():
            if doc_id in seen or version.source in unreadable:
                continue  # unreadable this time: keep the last good version rather than drop it
            store.remove_version(version.version_id, target)
    changes = store.changes_for(target)
    report.added, report.updated = changes.added, changes.updated
    report.removed, report.unchanged = changes.removed, changes.unchanged
