"""Damaged indexes (D19 of the hardening probe): every corruption is detected on load, the
fix each error names works, and the CLI answers one line, never a traceback."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from retrieval.disk.generation import open_index
from retrieval.errors import CorruptIndexError, UnsafePathError
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from serving.cli import app
from testing.embedder import HashEmbedder
from tests.fixtures.indexes import passage_set, write_text_corpus

CONFIG = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8)
REBUILD = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8, rebuild=True)
runner = CliRunner()


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    corpus = write_text_corpus(tmp_path / "corpus", 6)
    index = tmp_path / "index"
    run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    return corpus, index


def _faiss_file(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip() / "index.faiss"


def _garble_vectors(index: Path) -> None:
    """Overwrite bytes inside the vector data; size and header stay valid for faiss."""
    path = _faiss_file(index)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))


def _one_line_error(result: Result) -> str:
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_garbage_in_the_vector_data_is_detected(built: tuple[Path, Path]) -> None:
    _corpus, index = built
    assert open_index(index).manifest.faiss_sha256
    _garble_vectors(index)
    with pytest.raises(CorruptIndexError, match=r"sha256 differs.*--rebuild"):
        open_index(index)


def test_a_plain_index_run_rebuilds_a_damaged_generation(built: tuple[Path, Path]) -> None:
    corpus, index = built
    before = passage_set(index)
    _garble_vectors(index)
    embedder = HashEmbedder()
    report = run_index_job([corpus], index, CONFIG, embedder=embedder)
    assert report.published and report.generation == 2
    assert embedder.passages_embedded == 0, "rebuilt from the store, nothing re-embedded"
    assert report.unchanged == 6 and (report.added, report.updated, report.removed) == (0, 0, 0)
    assert passage_set(index) == before  # opens cleanly again, same passages


def test_corrupt_current_pointer_is_fixed_by_the_named_command(built: tuple[Path, Path]) -> None:
    corpus, index = built
    before = passage_set(index)
    (index / "CURRENT").write_text("gen-banana\n")
    with pytest.raises(UnsafePathError, match="--rebuild") as caught:
        open_index(index)
    assert "thinkrag index" in str(caught.value)
    report = run_index_job([corpus], index, REBUILD, embedder=HashEmbedder())
    assert report.published and report.generation == 2
    assert passage_set(index) == before


def _damage_store(index: Path) -> None:
    store = index / "store.sqlite"
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    conn.close()
    data = bytearray(store.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for start in range(page, len(data), page):  # keep page 1 (header + schema root)
        data[start : start + page] = b"\xa5" * min(page, len(data) - start)
    store.write_bytes(bytes(data))


def test_corrupt_store_pages_give_one_line_and_rebuild_works(built: tuple[Path, Path]) -> None:
    corpus, index = built
    before = passage_set(index)
    _damage_store(index)
    result = runner.invoke(app, ["index", str(corpus), "--index", str(index), "--json"])
    line = _one_line_error(result)
    assert "store.sqlite" in line and "--rebuild" in line
    report = run_index_job([corpus], index, REBUILD, embedder=HashEmbedder())
    assert report.published and report.added == 6
    assert passage_set(index) == before
    assert any(p.name.startswith("store.sqlite.damaged-") for p in index.iterdir())


def test_index_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 1)
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    result = runner.invoke(app, ["index", str(corpus), "--index", str(target)])
    line = _one_line_error(result)
    assert "is a file" in line and "--index" in line
    result = runner.invoke(app, ["search", "words", "--index", str(target), "--mode", "bm25"])
    _one_line_error(result)
    assert os.path.isfile(target)
