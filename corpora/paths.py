"""Where the bundled demo corpus and the shared (never committed) eval data live."""

from __future__ import annotations

from pathlib import Path

EVAL_DIR_ENV = "THINKRAG_EVAL_DIR"  # read by serving.settings (`Settings.eval_dir`)
MULTIHOP_DEV_FILE = "multihop_dev.jsonl"


def demo_corpus_dir() -> Path:
    """The demo corpus folder shipped as package data next to this module."""
    return Path(__file__).resolve().parent / "demo"


def repo_root() -> Path:
    """The source checkout root (the folder holding `corpora/`)."""
    return Path(__file__).resolve().parent.parent


def shared_eval_dir(override: Path | None = None) -> Path | None:
    """The eval data folder, or None when it is absent.

    `override` (`Settings.eval_dir`, i.e. `THINKRAG_EVAL_DIR`) wins when given, so an
    installed package can find it; otherwise the eval data sits beside the checkout at
    `<repo root>/../shared/eval`. The data is never copied into the repository, so
    callers must handle None (tests skip with a reason).
    """
    candidate = override if override is not None else repo_root().parent / "shared" / "eval"
    return candidate if candidate.is_dir() else None


def multihop_dev_path(override: Path | None = None) -> Path | None:
    """`multihop_dev.jsonl` in the shared eval folder, or None when it is not there."""
    base = shared_eval_dir(override)
    if base is None:
        return None
    path = base / MULTIHOP_DEV_FILE
    return path if path.is_file() else None
