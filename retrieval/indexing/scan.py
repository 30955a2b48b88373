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
from retrieval.embedders import DEFAULT_EMBEDDER, PREVIOUS_DEFAULT_EMBEDDER, spec_for_id
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
EMBEDDER_SPEC_KEY = "embedder_spec"


def config_dict(embedder: Embedder, config: IndexConfig) -> dict[str, object]:
    return {
        "embedder_id": embedder.id,
        "dim": embedder.dim,
        "max_tokens": config.max_tokens,
        "overlap_tokens": config.overlap_tokens,
        "bm25_tokenizer": tokenizer_id(),
    }


def check_config(
    store: StoreWriter, embedder: Embedder, config: IndexConfig, target: int, spec: str
) -> None:
    """Stored vectors are only reusable under the settings that made them; `spec` is the
    `--embedder` value that built `embedder`, kept so a refusal can name it."""
    wanted = dumps_config(config_dict(embedder, config))
    stored = store.get_meta("config")
    if stored is not None and stored != wanted and not config.rebuild:
        raise ManifestMismatchError(_refusal(json.loads(stored), json.loads(wanted), store))
    with store.transaction():
        if config.rebuild:
            for version in store.live_versions().values():
                # keep what this same rebuild already embedded under the same settings
                if version.gen_added < target or stored != wanted:
                    store.remove_version(version.version_id, target)
        store.set_meta("config", wanted)
        store.set_meta(EMBEDDER_SPEC_KEY, spec)


def _refusal(old: dict[str, object], new: dict[str, object], store: StoreWriter) -> str:
    """What differs, and the two ways on: re-embed, or keep the settings that built it."""
    diffs = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.items() if old.get(k) != v)
    keep: list[str] = []
    if old.get("embedder_id") != new.get("embedder_id"):
        # stores written before the spec was kept: the registry knows its own embedders' ids
        old_spec = store.get_meta(EMBEDDER_SPEC_KEY) or spec_for_id(str(old.get("embedder_id")))
        keep.append(f"--embedder {old_spec}" if old_spec else "the embedder that built it")
        if old_spec == PREVIOUS_DEFAULT_EMBEDDER:
            keep[-1] += f" (the default before {DEFAULT_EMBEDDER})"
    for key, flag in (("max_tokens", "--max-tokens"), ("overlap_tokens", "--overlap")):
        if old.get(key) != new.get(key):
            keep.append(f"{flag} {old.get(key)}")
    tail = f", or keep the old settings with {' '.join(keep)}" if keep else ""
    return (
        f"this index was built with different settings ({diffs}); rerun the same command "
        f"with --rebuild to re-embed everything{tail}"
    )


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
