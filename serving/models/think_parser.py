"""A vLLM reasoning parser for models that write `<think>...</think>` as ordinary text.

Loaded into the vLLM process with `--reasoning-parser-plugin <this file>` (never imported
by thinkrag itself). Qwen2.5's vocabulary has no think tokens, so `</think>` is spelled
with ordinary BPE pieces. vLLM's text-based `olmo3` parser splits the text correctly, but
its end-of-reasoning test (which tells structured outputs and forced tool calls when to
start constraining) expects exactly the pieces `</` `think` `>`; Qwen's tokenizer merges
the `>` with the newlines that follow (`>\\n\\n` is one token), so the end was never seen
and forced tool calls stayed unconstrained. This parser accepts any piece ending in `</`,
then `think`, then any piece starting with `>`, and checks only the newest tokens on each
decode step instead of rescanning the whole sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from vllm.reasoning import ReasoningParserManager
from vllm.reasoning.olmo3_reasoning_parser import Olmo3ReasoningParser

NAME = "think_tags"


class ThinkTagsReasoningParser(Olmo3ReasoningParser):
    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(tokenizer, *args, **kwargs)
        vocab: dict[str, int] = self.vocab
        self._opens = frozenset(i for piece, i in vocab.items() if piece.endswith("</"))
        self._word = vocab["think"]
        self._closes = frozenset(i for piece, i in vocab.items() if piece.startswith(">"))

    def _ends_at(self, ids: Sequence[int], i: int) -> bool:
        return ids[i] in self._opens and ids[i + 1] == self._word and ids[i + 2] in self._closes

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        return any(self._ends_at(input_ids, i) for i in range(len(input_ids) - 3, -1, -1))

    def is_reasoning_end_streaming(
        self, input_ids: Sequence[int], delta_ids: Iterable[int]
    ) -> bool:
        new = len(list(delta_ids))
        start = max(0, len(input_ids) - new - 2)
        return any(self._ends_at(input_ids, i) for i in range(start, len(input_ids) - 2))


# Registering is this file's whole purpose: vLLM imports it by path for that.
ReasoningParserManager.register_module(name=NAME, module=ThinkTagsReasoningParser)
