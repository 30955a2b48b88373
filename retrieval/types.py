"""Data that crosses the retrieval boundary, and the ports other layers depend on.

Everything here is plain typed data so that `agent/` and `serving/` never see FAISS,
SQLite or an embedding runtime directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Document:
    """One loaded source document, before chunking."""

    doc_id: str  # stable: derived from the source path/URL (or the jsonl id field)
    title: str
    text: str
    source: str  # path relative to the indexed root, or a URL
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk of a document; `start`/`end` are character offsets into `Document.text`."""

    passage_id: int  # stable 64-bit id, also the FAISS id
    doc_id: str
    ordinal: int  # position of the passage within its document
    title: str
    text: str
    source: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Hit(Passage):
    """A search result: a passage plus its score under the method that found it."""

    score: float

    @classmethod
    def scored(cls, passage: Passage, score: float) -> Hit:
        return cls(**{f.name: getattr(passage, f.name) for f in fields(Passage)}, score=score)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Restrict a search. Empty fields mean no restriction."""

    doc_ids: frozenset[str] = frozenset()
    source_prefix: str | None = None


@runtime_checkable
class Embedder(Protocol):
    """Turns text into vectors. Query and passage sides differ for models like e5."""

    @property
    def id(self) -> str:
        """Stable identifier recorded in the manifest, e.g. `minilm-l6-int8`."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def normalized(self) -> bool:
        """True when returned vectors are L2-normalised (inner product == cosine)."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...

    def embed_passages(self, texts: Sequence[str]) -> Vectors: ...


@runtime_checkable
class Retriever(Protocol):
    """What the agent's tools need from an index."""

    def search(
        self, query: str, k: int = 10, filters: SearchFilters | None = None
    ) -> list[Hit]: ...

    def get_passage(self, passage_id: int) -> Passage | None: ...

    def neighbours(self, passage_id: int, window: int = 1) -> list[Passage]:
        """The passage with up to `window` passages before and after it, in order."""
        ...

    def document_passages(self, doc_id: str) -> list[Passage]: ...
