"""Opening a published index: one generation, verified against its manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.disk.layout import MANIFEST_FILE, STORE_FILE, require_current
from retrieval.disk.lexical import BM25Index
from retrieval.disk.manifest import Manifest, read_manifest
from retrieval.disk.passages import StoreReader
from retrieval.disk.vectors import load_index
from retrieval.errors import CorruptIndexError
from retrieval.types import Embedder


@dataclass(frozen=True)
class IndexReader:
    """Everything a retriever reads, pinned to one generation."""

    index_dir: Path
    generation: int
    manifest: Manifest
    faiss: Any
    bm25: BM25Index
    store: StoreReader


def current_manifest(index_dir: Path | str) -> Manifest:
    _generation, gen_dir = require_current(Path(index_dir))
    return read_manifest(gen_dir / MANIFEST_FILE)


def open_index(index_dir: Path | str, *, embedder: Embedder | None = None) -> IndexReader:
    """Open the published generation of `index_dir`; checks the FAISS file, the BM25 index
    and the store against the manifest, and `embedder` (when given) against it too."""
    index_dir = Path(index_dir)
    generation, gen_dir = require_current(index_dir)
    manifest = read_manifest(gen_dir / MANIFEST_FILE)
    if manifest.generation != generation:
        raise CorruptIndexError(
            f"{gen_dir} holds a manifest for generation {manifest.generation}; re-run "
            f"`thinkrag index ... --index {index_dir} --rebuild`"
        )
    if embedder is not None:
        manifest.check_embedder(embedder)
    faiss_index = load_index(
        manifest.faiss_path(gen_dir),
        factory=manifest.factory,
        dim=manifest.dim,
        ntotal=manifest.passages,
        sha256=manifest.faiss_sha256,
    )
    bm25 = BM25Index(manifest.bm25_path(gen_dir))
    store = StoreReader(index_dir / STORE_FILE, generation)
    _documents, passages = store.counts()
    if passages != manifest.passages or len(bm25) != manifest.passages:
        raise CorruptIndexError(
            f"{index_dir} is inconsistent: manifest says {manifest.passages} passages, the "
            f"store has {passages} and BM25 has {len(bm25)}; re-run "
            f"`thinkrag index ... --index {index_dir} --rebuild`"
        )
    return IndexReader(index_dir, generation, manifest, faiss_index, bm25, store)
