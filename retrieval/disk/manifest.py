"""`manifest.json`: what a generation contains and how it was built, checked on every load.

The manifest is written last into a generation directory; a reader trusts the FAISS file
only after it agrees with the manifest (sha256 of its bytes, factory string, dimension,
size), and trusts the query embedder only after it agrees too (id and dimension).
Manifests written before `faiss_sha256` existed have none and still open (unchecked bytes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from retrieval.disk.layout import BM25_DIR, FAISS_FILE, inside
from retrieval.errors import CorruptIndexError, ManifestMismatchError
from retrieval.types import Embedder

FORMAT_VERSION = 1
EMBED_TEXT = "title + '\\n' + passage text"


class ChunkingParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_tokens: int
    overlap_tokens: int


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    format_version: int = FORMAT_VERSION
    generation: int
    factory: str
    faiss_sha256: str | None = None
    metric: str = "inner_product"
    embedder_spec: str
    embedder_id: str
    dim: int
    normalized: bool
    embed_text: str = EMBED_TEXT
    chunking: ChunkingParams
    bm25_tokenizer: str
    corpus_fingerprint: str
    documents: int
    passages: int
    faiss_version: str
    thinkrag_version: str
    created_at: str
    faiss_file: str = FAISS_FILE
    bm25_dir: str = BM25_DIR

    def write(self, directory: Path, name: str = "manifest.json") -> None:
        (directory / name).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def faiss_path(self, generation_dir: Path) -> Path:
        return inside(generation_dir, generation_dir / self.faiss_file, what="manifest faiss_file")

    def bm25_path(self, generation_dir: Path) -> Path:
        return inside(generation_dir, generation_dir / self.bm25_dir, what="manifest bm25_dir")

    def check_embedder(self, embedder: Embedder) -> None:
        """Refuse a query embedder that would search in a different vector space."""
        if embedder.id != self.embedder_id or embedder.dim != self.dim:
            raise ManifestMismatchError(
                f"the index was built with embedder {self.embedder_id!r} (dim {self.dim}) but "
                f"the configured embedder is {embedder.id!r} (dim {embedder.dim}); open it with "
                f"--embedder {self.embedder_spec} or re-index with --embedder "
                f"<your embedder> --rebuild"
            )


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest.model_validate(raw)
    except FileNotFoundError as exc:
        raise CorruptIndexError(
            f"{path} is missing; re-run `thinkrag index ... --index {path.parent.parent} --rebuild`"
        ) from exc
    except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise CorruptIndexError(
            f"{path} is not a valid manifest ({first}); re-run "
            f"`thinkrag index ... --index {path.parent.parent} --rebuild`"
        ) from exc


def thinkrag_version() -> str:
    try:
        return metadata.version("thinkrag")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
