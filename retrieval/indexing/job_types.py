"""Typed inputs and outputs of the indexing job, and the progress port it reports to.

Also the two facts about a document every stage must agree on: its content hash (what
decides "unchanged" on a rerun) and the one record of a file or line that was skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from retrieval.types import Document

DEFAULT_BATCH_SIZE = 64
DEFAULT_MAX_TOKENS = 180
DEFAULT_OVERLAP = 30


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """How to build an index. `embedder_spec=None` means the project's default embedder."""

    embedder_spec: str | None = None
    index_spec: str | None = None  # FAISS factory string; None picks one by corpus size
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    jsonl_id: str = "id"
    jsonl_title: str = "title"
    jsonl_text: str = "text"
    batch_size: int = DEFAULT_BATCH_SIZE
    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP
    rebuild: bool = False
    ray_address: str | None = None  # "auto", "ray://host:port", or a local cluster address
    ray_concurrency: int = 1
    # Where an embedder that builds its model on first use (e5) keeps it; None: the per-user
    # cache. The CLI passes `Settings.cache_root`, so THINKRAG_CACHE moves it.
    model_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.max_tokens < 1 or not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError(
                f"need max_tokens >= 1 and 0 <= overlap < max_tokens, got "
                f"{self.max_tokens}/{self.overlap_tokens}"
            )


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path (or jsonl line, `source` = "path:line") that produced no document, and why;
    the reason says what to do about it."""

    source: str
    reason: str


def content_hash(title: str, text: str) -> str:
    """sha256 of title and text: equal hashes mean the stored passages can be kept."""
    return hashlib.sha256(f"{title}\0{text}".encode()).hexdigest()


def document_hash(doc: Document) -> str:
    """The hash a loader recorded in `metadata["content_hash"]`, else `content_hash`."""
    return str(doc.metadata.get("content_hash") or content_hash(doc.title, doc.text))


@dataclass(slots=True)
class IndexReport:
    """What one run of the job did. `passages` counts the published index."""

    index_dir: str
    generation: int
    published: bool
    documents_read: int = 0
    unchanged: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    passages_embedded: int = 0
    factory: str = ""
    embedder_id: str = ""
    seconds: float = 0.0
    load_seconds: float = 0.0  # building the embedder (model load, or a first-use build)
    scan_seconds: float = 0.0  # reading, hashing, chunking and storing the documents
    embed_seconds: float = 0.0  # embedding and committing the pending passages
    publish_seconds: float = 0.0  # FAISS + BM25 build and the atomic swap

    @property
    def embed_passages_per_second(self) -> float:
        """Embedded passages over the embed phase alone: what the embedder sustained."""
        return self.passages_embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0

    @property
    def passages_per_second(self) -> float:
        """Embedded passages over the whole job's wall time (0 when nothing was embedded)."""
        return self.passages_embedded / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> str:
        data = asdict(self)
        data["passages_per_second"] = round(self.passages_per_second, 2)
        data["embed_passages_per_second"] = round(self.embed_passages_per_second, 2)
        return json.dumps(data, ensure_ascii=False, indent=2)


class JobProgress(Protocol):
    """Where the job reports progress; the CLI renders it with rich, tests pass nothing."""

    def scanned(self, documents: int) -> None: ...

    def embedding(self, total_passages: int) -> None: ...

    def advance(self, passages: int) -> None: ...

    def stage(self, name: str) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def scanned(self, documents: int) -> None:
        pass

    def embedding(self, total_passages: int) -> None:
        pass

    def advance(self, passages: int) -> None:
        pass

    def stage(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass
