"""Turn the store's view of a generation into FAISS + BM25 + manifest and swap it in."""

from __future__ import annotations

from pathlib import Path

from retrieval.checksums import sha256_file
from retrieval.disk.layout import (
    BM25_DIR,
    FAISS_FILE,
    STORE_FILE,
    clean_old,
    new_staging_dir,
    publish,
)
from retrieval.disk.lexical import build_bm25, tokenizer_id
from retrieval.disk.manifest import ChunkingParams, Manifest, now_iso, thinkrag_version
from retrieval.disk.passage_writer import StoreWriter
from retrieval.disk.passages import StoreReader
from retrieval.disk.vectors import build_index, default_spec, faiss_version
from retrieval.indexing.job_types import IndexConfig
from retrieval.types import Embedder


def publish_generation(
    store: StoreWriter,
    index_dir: Path,
    target: int,
    embedder: Embedder,
    embedder_spec: str,
    config: IndexConfig,
) -> Manifest:
    """Build generation `target` from stored vectors, publish it, then drop what no kept
    generation can see."""
    reader = StoreReader(index_dir / STORE_FILE, target)
    documents, passages = reader.counts()
    spec = config.index_spec or default_spec(passages, embedder.dim)
    staging = new_staging_dir(index_dir)
    factory = build_index(
        spec, embedder.dim, lambda: reader.iter_vectors(embedder.dim), staging / FAISS_FILE
    )
    build_bm25(reader.iter_texts(), staging / BM25_DIR)
    manifest = Manifest(
        generation=target,
        factory=factory,
        faiss_sha256=sha256_file(staging / FAISS_FILE),
        embedder_spec=embedder_spec,
        embedder_id=embedder.id,
        dim=embedder.dim,
        normalized=True,  # the job L2-normalises every stored vector
        chunking=ChunkingParams(max_tokens=config.max_tokens, overlap_tokens=config.overlap_tokens),
        bm25_tokenizer=tokenizer_id(),
        corpus_fingerprint=reader.fingerprint(),
        documents=documents,
        passages=passages,
        faiss_version=faiss_version(),
        thinkrag_version=thinkrag_version(),
        created_at=now_iso(),
    )
    manifest.write(staging)
    publish(index_dir, staging, target)
    store.purge(target - 1)
    clean_old(index_dir, target)
    return manifest
