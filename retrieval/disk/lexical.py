"""BM25 side of an index: bm25s (lucene variant, k1 1.5, b 0.75) over the same passages.

Passages are tokenised by `retrieval.terms.bm25_tokenize` (English stemming, jieba for
Chinese) and indexed as ``title + newline + text``. Tokens become integer ids while the
texts stream out of SQLite in batches, so the build holds ids, not strings. bm25s rows are
positions; `passage_ids.npy` maps them back to passage ids.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import CorruptIndexError

IDS_FILE = "passage_ids.npy"
K1 = 1.5
B = 0.75


def tokenizer_id() -> str:
    from retrieval import terms as tokenize

    return str(getattr(tokenize, "TOKENIZER_ID", "thinkrag.bm25_tokenize"))


def _tokenize(texts: list[str]) -> list[list[str]]:
    from retrieval.terms import bm25_tokenize

    return bm25_tokenize(texts)


def build_bm25(batches: Iterator[tuple[list[int], list[str]]], out: Path) -> None:
    import bm25s
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    corpus_ids: list[list[int]] = []
    passage_ids: list[int] = []
    for ids, texts in batches:
        for tokens in _tokenize(texts):
            corpus_ids.append([vocab.setdefault(tok, len(vocab)) for tok in tokens])
        passage_ids.extend(ids)
    if "" not in vocab:  # bm25s expects an empty-string token it can map unknowns to
        vocab[""] = len(vocab)
    model = bm25s.BM25(method="lucene", k1=K1, b=B)
    model.index(Tokenized(ids=corpus_ids, vocab=vocab), show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    np.save(out / IDS_FILE, np.asarray(passage_ids, dtype=np.int64))


# numpy reads each .npy header with ast.literal_eval, and CPython 3.11's parser is not
# safe when two threads parse at once ("AST constructor recursion depth mismatch", seen
# when readers open a generation while the indexing job publishes one). Loads are rare.
_LOAD_LOCK = threading.Lock()


class BM25Index:
    """A loaded bm25s index; scoring is read-only and safe across threads."""

    def __init__(self, directory: Path) -> None:
        import bm25s

        try:
            with _LOAD_LOCK:
                self._model: Any = bm25s.BM25.load(str(directory), mmap=True)
                self._ids = np.load(directory / IDS_FILE, mmap_mode="r")
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptIndexError(
                f"the BM25 index in {directory} cannot be read ({exc}); re-run "
                "`thinkrag index ... --rebuild`"
            ) from exc
        self._vocab: dict[str, int] = dict(self._model.vocab_dict)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def search(self, query: str, depth: int) -> list[tuple[int, float]]:
        """(passage id, score) of the top `depth` passages with a positive score."""
        tokens = [t for t in _tokenize([query])[0] if t in self._vocab and t]
        if not tokens or depth <= 0 or len(self) == 0:
            return []
        scores = np.asarray(self._model.get_scores(tokens), dtype=np.float32)
        depth = min(depth, scores.shape[0])
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._ids[i]), float(scores[i])) for i in top if scores[i] > 0.0]
