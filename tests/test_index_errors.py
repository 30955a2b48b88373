"""Bad input gives one typed error whose message names the problem and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval.disk.generation import open_index
from retrieval.disk.layout import index_path
from retrieval.errors import (
    CorruptIndexError,
    EmptyCorpusError,
    IndexNotFoundError,
    ManifestMismatchError,
    UnsafePathError,
)
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from retrieval.search.retriever import load_retriever
from testing.embedder import HashEmbedder


@pytest.fixture
def index_copy(contract_index: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(contract_index, target)
    return target


def _generation_dir(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def test_empty_corpus(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyCorpusError, match=r"no documents found under .*--include"):
        run_index_job([empty], tmp_path / "index", IndexConfig(), embedder=HashEmbedder())


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="thinkrag index"):
        load_retriever(tmp_path / "nowhere", mode="bm25")
    (tmp_path / "half").mkdir()
    with pytest.raises(IndexNotFoundError, match="no published index"):
        open_index(tmp_path / "half")


def test_truncated_faiss_file(index_copy: Path) -> None:
    faiss_file = _generation_dir(index_copy) / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with pytest.raises(CorruptIndexError, match="--rebuild"):
        open_index(index_copy)


def test_bad_manifest_json(index_copy: Path) -> None:
    (_generation_dir(index_copy) / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptIndexError, match=r"not a valid manifest.*--rebuild"):
        open_index(index_copy)


def test_manifest_disagreeing_with_faiss(index_copy: Path) -> None:
    manifest = _generation_dir(index_copy) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["factory"] = "IDMap2,HNSW32"
    manifest.write_text(json.dumps(data))
    with pytest.raises(CorruptIndexError, match="does not match its manifest"):
        open_index(index_copy)


def test_embedder_mismatch(contract_index: Path) -> None:
    with pytest.raises(ManifestMismatchError, match="--embedder hash-64") as caught:
        load_retriever(contract_index, mode="dense", embedder=HashEmbedder(dim=32))
    assert "dim 64" in str(caught.value) and "dim 32" in str(caught.value)
    # BM25 mode needs no query embedder, so opening with none works
    assert load_retriever(contract_index, mode="bm25").search("experts", k=1)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "/etc"])
def test_index_name_escaping_its_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        index_path(tmp_path, name)
    assert index_path(tmp_path, "demo") == (tmp_path / "demo").resolve()


def test_current_pointer_escaping(index_copy: Path) -> None:
    (index_copy / "CURRENT").write_text("../../etc\n")
    with pytest.raises(UnsafePathError, match="not a generation directory"):
        open_index(index_copy)


def test_manifest_pointing_outside(index_copy: Path) -> None:
    manifest = _generation_dir(index_copy) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["faiss_file"] = "../../../outside.faiss"
    manifest.write_text(json.dumps(data))
    with pytest.raises(UnsafePathError, match="outside"):
        open_index(index_copy)
