"""The indexer kill-loop, kept from the hardening probe: a real job subprocess SIGKILLed at
random points (start-up, scan, embed, publish) over and over, the corpus edited halfway,
then the index must equal a clean build, and every published generation in between must
open whole. Also D22: a resumed job reports what its generation changed, not what the
resumed half saw."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from retrieval.disk.generation import open_index
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from retrieval.types import Vectors
from testing.embedder import HashEmbedder
from tests.fixtures.indexes import passage_set, write_text_corpus

REPO = Path(__file__).resolve().parents[1]
CONFIG = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8)
KILLS = 12


def _edit(corpus: Path) -> None:
    (corpus / "doc0001.txt").write_text("Okapi facts.\n\nThe okapi lives in forests.\n")
    (corpus / "doc0002.txt").unlink()
    (corpus / "new.txt").write_text("Narwhal tusk facts.\n\nThe narwhal is a whale.\n")


def _committed_batches(store: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='committed_batches'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _kill_point_reached(phase: str, index: Path, base: int, started: float, wait: float) -> bool:
    """start: a random moment of start-up or scan; embed: a few batches after this run's
    first commit; publish: while a staging generation is being written."""
    if phase == "start":
        return time.monotonic() - started > wait
    if phase == "embed":
        return _committed_batches(index / "store.sqlite") >= base + 1 + int(wait * 3)
    return index.is_dir() and any(p.name.startswith(".staging-") for p in index.iterdir())


@pytest.mark.slow
def test_repeated_sigkills_then_equal_to_a_clean_build(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 24)
    index = tmp_path / "index"
    worker = [sys.executable, "-m", "tests.fixtures.indexes", str(corpus), str(index)]
    rng = random.Random(12)
    started = time.monotonic()
    kills: dict[str, int] = {"start": 0, "embed": 0, "publish": 0}
    finished = 0
    up_to_date = False
    for _round in range(60):
        if sum(kills.values()) >= KILLS:
            break
        if sum(kills.values()) >= KILLS // 2 and not (corpus / "new.txt").exists():
            _edit(corpus)
            up_to_date = False
        # once a run has finished on an unchanged corpus there is nothing left to embed or
        # publish, so only start-up can be hit until the corpus edit brings new work
        phase = rng.choice(list(kills)) if not up_to_date else "start"
        wait = rng.uniform(0.1, 1.0)
        base = _committed_batches(index / "store.sqlite")
        proc = subprocess.Popen(
            [*worker, "--delay", "0.04"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        spawned = time.monotonic()
        while proc.poll() is None and not _kill_point_reached(phase, index, base, spawned, wait):
            time.sleep(0.005)
        if proc.poll() is None:
            if phase == "publish":
                time.sleep(rng.uniform(0.0, 0.05))
            os.kill(proc.pid, signal.SIGKILL)
            kills[phase] += 1
        else:
            finished += 1
            up_to_date = True
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
        if (index / "CURRENT").exists():
            open_index(index)  # whatever is published is whole
        assert time.monotonic() - started < 120, "kill loop is too slow for CI"
    assert sum(kills.values()) >= 10, kills
    print(
        f"kill-loop: {sum(kills.values())} SIGKILLs {kills}, {finished} runs finished "
        f"between them, {time.monotonic() - started:.1f} s"
    )
    final = subprocess.run(worker, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    clean = tmp_path / "clean"
    run_index_job([corpus], clean, CONFIG, embedder=HashEmbedder())
    got, want = passage_set(index), passage_set(clean)
    assert got == want
    assert len({p[0] for p in got}) == len(got), "duplicate passage ids"
    assert json.loads(final.stdout)["documents"] == 24


class FailingEmbedder(HashEmbedder):
    """Raises on its `fail_on`-th call, like a job killed mid-embed."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if self.passage_calls + 1 == self.fail_on:
            raise RuntimeError("killed")
        return super().embed_passages(texts)


def test_resumed_incremental_job_reports_the_whole_generation(tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 6, sentences=24)
    index = tmp_path / "index"
    run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    for name in ("doc0001.txt", "doc0003.txt"):
        (corpus / name).write_text(f"{name} changed. " * 60 + "\n")
    (corpus / "doc0002.txt").unlink()
    (corpus / "new.txt").write_text("Narwhal tusk facts.\n\nThe narwhal is a whale.\n")
    with pytest.raises(RuntimeError, match="killed"):
        run_index_job([corpus], index, CONFIG, embedder=FailingEmbedder(fail_on=2))
    report = run_index_job([corpus], index, CONFIG, embedder=HashEmbedder())
    assert report.published and report.generation == 2
    counts = (report.added, report.updated, report.removed, report.unchanged)
    assert counts == (1, 2, 1, 3)
