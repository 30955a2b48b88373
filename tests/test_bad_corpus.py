"""The bad-corpus probe, kept: hostile and careless corpus entries through the real loaders
and the real job. Each one is either indexed correctly or skipped with a reason that names
it and the fix; nothing hangs, crashes with a traceback, or leaves the corpus.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from retrieval.indexing.chunking import chunk_text, split_sentences
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig, Skipped
from retrieval.indexing.loaders import load_paths
from retrieval.indexing.loaders.html import read_html
from retrieval.search.retriever import load_retriever
from retrieval.types import Document
from testing.embedder import HashEmbedder

CONFIG = IndexConfig(batch_size=16, max_tokens=40, overlap_tokens=8)


def _load(*paths: Path) -> tuple[dict[str, Document], dict[str, str]]:
    docs: dict[str, Document] = {}
    skipped: dict[str, str] = {}
    for item in load_paths(list(paths)):
        if isinstance(item, Skipped):
            skipped[item.source] = item.reason
        else:
            docs[item.source] = item
    return docs, skipped


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.txt").write_text("Okapis live in the forests of the Congo.\n")
    return root


def test_non_utf8_file_name_is_skipped_and_named(corpus: Path, tmp_path: Path) -> None:
    (corpus / os.fsdecode(b"caf\xe9.txt")).write_text("Latin-1 named file.\n")
    docs, skipped = _load(corpus)
    assert list(docs) == ["good.txt"]
    assert set(skipped) == {"caf\\xe9.txt"}
    assert "not valid UTF-8" in skipped["caf\\xe9.txt"] and "rename" in skipped["caf\\xe9.txt"]
    report = run_index_job([corpus], tmp_path / "index", CONFIG, embedder=HashEmbedder())
    assert report.published and report.added == 1
    assert [s.source for s in report.skipped] == ["caf\\xe9.txt"]


def test_symlink_loops_are_reported_not_a_traceback(corpus: Path) -> None:
    (corpus / "loop_a.txt").symlink_to(corpus / "loop_b.txt")
    (corpus / "loop_b.txt").symlink_to(corpus / "loop_a.txt")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to(corpus, target_is_directory=True)
    docs, skipped = _load(corpus)
    assert list(docs) == ["good.txt"]
    assert "symbolic link loop" in skipped["loop_a.txt"]
    assert "symbolic link loop" in skipped["loop_b.txt"]
    assert "to a folder; not followed" in skipped["sub/up"]


def test_links_out_of_the_corpus_are_never_followed(corpus: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root password hunter2\n")
    (corpus / "passwd.txt").symlink_to(secret)
    (corpus / "etc").symlink_to("/etc", target_is_directory=True)
    (corpus / "inside.txt").symlink_to(corpus / "good.txt")
    docs, skipped = _load(corpus)
    assert set(docs) == {"good.txt", "inside.txt"}  # a link within the corpus is read
    assert "outside the corpus; not followed" in skipped["passwd.txt"]
    assert "etc" in skipped
    index = tmp_path / "index"
    run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    assert not load_retriever(index, mode="bm25").search("hunter2 password", k=5)


def test_fifo_and_devices_named_directly_do_not_hang(corpus: Path, tmp_path: Path) -> None:
    fifo = corpus / "pipe.txt"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.txt"  # /dev/zero under a name the loaders would read
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    docs, skipped = _load(corpus, fifo, zero, Path("/dev/zero"))
    assert time.monotonic() - started < 10
    assert list(docs) == ["good.txt"]
    assert "FIFO" in skipped["pipe.txt"]  # in the folder walk and named directly
    assert "character device" in skipped["zero.txt"]
    assert "unsupported file" in skipped["zero"]  # no extension: never opened


def _load_as_unprivileged(root: Path) -> tuple[list[str], dict[str, str]]:
    """Root reads mode-000 folders, so as root the walk runs in a forked child that has
    dropped to `nobody` (uid 65534); the parent has already imported what it needs."""
    if os.geteuid() != 0:
        docs, skipped = _load(root)
        return list(docs), skipped
    _load(root)  # warm every import the walk uses while still root
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, walk, report, exit without cleanup
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            docs, skipped = _load(root)
            os.write(write_end, json.dumps([list(docs), skipped]).encode())
            code = 0
        except BaseException as exc:
            os.write(write_end, json.dumps(repr(exc)).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        payload = fh.read()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, payload.decode()
    docs, skipped = json.loads(payload)
    return docs, skipped


def test_every_skip_is_reported_with_its_reason(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="thinkrag-probe-"))
    base.chmod(0o755)  # the unprivileged walker must reach the corpus
    try:
        corpus = base / "corpus"
        corpus.mkdir(mode=0o755)
        (corpus / "good.txt").write_text("Okapis live in the forests of the Congo.\n")
        (corpus / "good.txt").chmod(0o644)
        (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
        locked = corpus / "locked"
        locked.mkdir()
        (locked / "inner.txt").write_text("cannot be seen\n")
        locked.chmod(0)
        docs, skipped = _load_as_unprivileged(corpus)
    finally:
        (base / "corpus" / "locked").chmod(0o755)
        shutil.rmtree(base)
    assert docs == ["good.txt"]
    assert "dangling symbolic link" in skipped["dangling.txt"]
    assert "cannot read folder" in skipped["locked"] and "permissions" in skipped["locked"]


def test_latin1_file_is_decoded_not_mojibake(corpus: Path) -> None:
    text = "Der Bär läuft über die Straße; café crème, naïve façade.\n"
    (corpus / "latin1.txt").write_bytes(text.encode("latin-1"))
    (corpus / "russian.txt").write_bytes("Привет, это русский текст.\n".encode("cp1251"))
    docs, _skipped = _load(corpus)
    assert docs["latin1.txt"].text == text
    assert docs["russian.txt"].text == "Привет, это русский текст.\n"


def test_a_megabyte_of_dots_splits_in_linear_time() -> None:
    started = time.perf_counter()
    spans = chunk_text("." * 1_000_000, max_tokens=180, overlap_tokens=30)
    mixed = split_sentences("!?" * 200_000 + "。！" * 200_000)
    elapsed = time.perf_counter() - started
    assert spans and mixed
    assert elapsed < 10, f"{elapsed:.1f} s: the splitter is not linear"


def test_deeply_nested_html_parses_in_linear_time() -> None:
    n = 100_000
    divs = ("<div>x" * n + "</div>" * n).encode()
    spans = ("<span>" * n + "deep" + "</span>" * n).encode()
    started = time.perf_counter()
    _title, text = read_html(divs, "divs")
    _title, deep = read_html(spans, "spans")
    elapsed = time.perf_counter() - started
    assert text.split() == ["x"] * n and deep == "deep"
    assert elapsed < 15, f"{elapsed:.1f} s: the HTML reader is not linear"
