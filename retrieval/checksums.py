"""`sha256_file`: the one file checksum behind every "built once, verified on reuse" cache.

FAISS generations, the e5 ONNX build, the packaged MiniLM and the local LLM folders all
verify files this way; one helper keeps their checksum files comparable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks so large weights stay out of RAM."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
