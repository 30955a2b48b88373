"""FAISS side of an index: choosing the factory string, building, loading, verifying.

Every index is ``IDMap2,<spec>`` with METRIC_INNER_PRODUCT over L2-normalised vectors, so
FAISS ids are our stable passage ids. IDMap2 (not IDMap) keeps the id->vector map that
`reconstruct` needs and accepts inner indexes that cannot take ids themselves (Flat, HNSW).
HNSW cannot `remove_ids`, so a new generation is always rebuilt from the vectors stored in
SQLite instead of patched: simple, identical for every spec, and cheap next to embedding.

Default spec by corpus size (passages): below 50,000 exact ``Flat``; up to 1,000,000
``HNSW32``; above, ``IVF{4*sqrt(n)},PQ{dim/8}`` trained on a sample of stored vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.checksums import sha256_file
from retrieval.errors import CorruptIndexError
from retrieval.types import Vectors

FLAT_MAX = 50_000
HNSW_MAX = 1_000_000
MMAP_MIN_BYTES = 256 * 1024 * 1024
HNSW_EF_SEARCH = 128
IVF_NPROBE = 32
# A single query over at most this many stored floats runs on the calling thread.
SERIAL_SEARCH_MAX_FLOATS = 50_000_000


def _faiss() -> Any:
    import faiss

    return faiss


def faiss_version() -> str:
    return str(_faiss().__version__)


def default_spec(n_passages: int, dim: int) -> str:
    if n_passages < FLAT_MAX:
        return "Flat"
    if n_passages <= HNSW_MAX:
        return "HNSW32"
    nlist = 1 << round(math.log2(4 * math.sqrt(n_passages)))
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return f"IVF{nlist},PQ{m}"


def full_factory(spec: str) -> str:
    spec = spec.replace(" ", "")
    return spec if spec.startswith("IDMap") else f"IDMap2,{spec}"


def build_index(
    spec: str,
    dim: int,
    batches: Callable[[], Iterator[tuple[np.ndarray, Vectors]]],
    out: Path,
    *,
    train_sample: int = 100_000,
) -> str:
    """Build from `batches` (called twice if the spec needs training) and write to `out`."""
    faiss = _faiss()
    factory = full_factory(spec)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(
            f"--index-spec {spec!r} is not a FAISS factory string faiss accepts "
            f"({str(exc).splitlines()[0]}); try 'Flat', 'HNSW32' or 'IVF1024,PQ48'"
        ) from exc
    if not index.is_trained:
        sample: list[Vectors] = []
        taken = 0
        for _ids, vecs in batches():
            sample.append(vecs[: train_sample - taken])
            taken += len(sample[-1])
            if taken >= train_sample:
                break
        index.train(np.concatenate(sample))
    for ids, vecs in batches():
        index.add_with_ids(np.ascontiguousarray(vecs), ids)
    faiss.write_index(index, str(out))
    return factory


def describe(index: Any) -> str | None:
    """A factory string for a loaded index: faiss's own reverse_index_factory when the
    Python wheel exposes it (faiss-cpu 1.15.1 does not), else a reading of the common
    types; None when the type is not one we recognise."""
    faiss = _faiss()
    reverse = getattr(faiss, "reverse_index_factory", None)
    if reverse is not None:
        try:
            return str(reverse(index))
        except RuntimeError:
            pass
    index = faiss.downcast_index(index)
    name = type(index).__name__
    if name in ("IndexIDMap2", "IndexIDMap"):
        inner = describe(index.index)
        return None if inner is None else f"{name[5:]},{inner}"
    if name in ("IndexFlatIP", "IndexFlatL2", "IndexFlat"):
        return "Flat"
    if name == "IndexHNSWFlat":
        return f"HNSW{index.hnsw.nb_neighbors(1)}"
    if name == "IndexIVFFlat":
        return f"IVF{index.nlist},Flat"
    if name == "IndexIVFPQ":
        bits = "" if index.pq.nbits == 8 else f"x{index.pq.nbits}"
        return f"IVF{index.nlist},PQ{index.pq.M}{bits}"
    return None


def load_index(
    path: Path, *, factory: str, dim: int, ntotal: int, sha256: str | None = None
) -> Any:
    """Read `path` (memory-mapped when large) and check it against the manifest's claims:
    first its bytes against `sha256` (when the manifest has one), then what faiss read."""
    faiss = _faiss()
    if not path.is_file():
        raise CorruptIndexError(
            f"{path} is missing; re-run `thinkrag index ... --index {path.parent.parent} --rebuild`"
        )
    if sha256 is not None and sha256_file(path) != sha256:
        raise CorruptIndexError(
            f"{path} is damaged (its sha256 differs from the manifest's); re-run `thinkrag "
            f"index ... --index {path.parent.parent} --rebuild`"
        )
    flags = 0
    if path.stat().st_size >= MMAP_MIN_BYTES:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
    try:
        index = faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        raise CorruptIndexError(
            f"{path} cannot be read by faiss ({str(exc).splitlines()[0][:120]}); re-run "
            f"`thinkrag index ... --index {path.parent.parent} --rebuild`"
        ) from exc
    found = describe(index)
    problems = []
    if found is not None and found.replace(" ", "") != factory.replace(" ", ""):
        problems.append(f"factory {found!r} != manifest {factory!r}")
    if index.d != dim:
        problems.append(f"dimension {index.d} != manifest {dim}")
    if index.ntotal != ntotal:
        problems.append(f"{index.ntotal} vectors != manifest's {ntotal} passages")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        problems.append("metric is not inner product")
    if problems:
        raise CorruptIndexError(
            f"{path} does not match its manifest ({'; '.join(problems)}); re-run "
            f"`thinkrag index ... --index {path.parent.parent} --rebuild`"
        )
    inner = faiss.downcast_index(getattr(faiss.downcast_index(index), "index", index))
    if hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    if hasattr(inner, "nprobe"):
        inner.nprobe = IVF_NPROBE
    return index


def search_one(index: Any, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Search one query vector, on the calling thread unless the index is very large.

    FAISS hands a search to its OpenMP pool. For one query that buys little, and right after
    an embedder's own pool has run (onnxruntime and torch threads spin-wait for a while) the
    OpenMP threads queue for the same cores: measured 3.4 ms instead of 0.01 ms for a
    147-vector flat index. `omp_set_num_threads` applies to the calling thread only.
    """
    if index.ntotal * index.d > SERIAL_SEARCH_MAX_FLOATS:
        return index.search(vector, k)
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(vector, k)
    finally:
        faiss.omp_set_num_threads(before)
