"""The `--ray` path on a local one-CPU Ray cluster started by the test: the same passages
and vectors as the local path, committed through the same store code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.disk.generation import open_index
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from testing.embedder import HashEmbedder
from tests.fixtures.indexes import passage_set, write_text_corpus

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    yield ray
    ray.shutdown()


def _vectors(index: Path) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for ids, vecs in open_index(index).store.iter_vectors(64):
        out.update(zip(ids.tolist(), vecs, strict=True))
    return out


def test_ray_job_equals_local_job(local_ray: Any, tmp_path: Path) -> None:
    corpus = write_text_corpus(tmp_path / "corpus", 6, sentences=6)
    config = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8)
    local = tmp_path / "local"
    run_index_job([corpus], local, config, embedder=HashEmbedder())

    on_ray = tmp_path / "ray"
    driver_embedder = HashEmbedder()
    ray_config = IndexConfig(batch_size=8, max_tokens=40, overlap_tokens=8, ray_address="auto")
    report = run_index_job([corpus], on_ray, ray_config, embedder=driver_embedder)
    assert report.published and report.added == 6
    assert driver_embedder.passages_embedded == 0, "embedding must happen on the Ray actors"
    assert report.passages_embedded == report.passages
    assert passage_set(on_ray) == passage_set(local)
    want, got = _vectors(local), _vectors(on_ray)
    assert want.keys() == got.keys()
    assert all(np.allclose(want[k], got[k], atol=1e-6) for k in want)

    # incremental on Ray too: one changed file, one embedded document
    (corpus / "doc0003.txt").write_text("Okapi facts.\n\nThe okapi lives in forests.\n")
    again = run_index_job([corpus], on_ray, ray_config, embedder=HashEmbedder())
    assert (again.updated, again.unchanged) == (1, 5)
    assert 0 < again.passages_embedded <= 2
