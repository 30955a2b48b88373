"""`InMemoryRetriever`: BM25 over passages held in memory, with no index to build.

The service serves a JSONL passages file with it (`memory_passages`), and agent tests use it
as a dependency-free stand-in for the real retriever.

BM25 scoring over passages held in memory, with a tiny tokeniser (lower-cased words, CJK
characters one by one) so it needs no model, no FAISS and no jieba. It passes the same
contract suite as `FaissRetriever`, so tests written against it hold for the real thing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from retrieval.types import Hit, Passage, SearchFilters

_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)
_K1 = 1.5
_B = 0.75


def simple_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class InMemoryRetriever:
    def __init__(self, passages: Sequence[Passage]) -> None:
        ids = [p.passage_id for p in passages]
        if len(set(ids)) != len(ids):
            raise ValueError("passage ids must be unique; give each Passage its own passage_id")
        self._passages = {p.passage_id: p for p in passages}
        self._by_doc: dict[str, list[Passage]] = {}
        for passage in passages:
            self._by_doc.setdefault(passage.doc_id, []).append(passage)
        for doc in self._by_doc.values():
            doc.sort(key=lambda p: p.ordinal)
        self._tf = {p.passage_id: Counter(simple_tokens(p.title + "\n" + p.text)) for p in passages}
        self._len = {pid: sum(tf.values()) for pid, tf in self._tf.items()}
        self._avg = sum(self._len.values()) / max(1, len(self._len))
        df: Counter[str] = Counter()
        for tf in self._tf.values():
            df.update(tf.keys())
        n = len(passages)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        terms = [t for t in simple_tokens(query) if t in self._idf]
        if k <= 0 or not terms:
            return []
        scored: list[tuple[float, int]] = []
        for pid, tf in self._tf.items():
            passage = self._passages[pid]
            if filters is not None:
                if filters.doc_ids and passage.doc_id not in filters.doc_ids:
                    continue
                if filters.source_prefix and not passage.source.startswith(filters.source_prefix):
                    continue
            norm = _K1 * (1 - _B + _B * self._len[pid] / self._avg)
            score = sum(self._idf[t] * tf[t] * (_K1 + 1) / (tf[t] + norm) for t in terms if t in tf)
            if score > 0:
                scored.append((score, pid))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [Hit.scored(self._passages[pid], score) for score, pid in scored[:k]]

    def get_passage(self, passage_id: int) -> Passage | None:
        return self._passages.get(passage_id)

    def neighbours(self, passage_id: int, window: int = 1) -> list[Passage]:
        passage = self._passages.get(passage_id)
        if passage is None:
            return []
        window = max(0, window)
        low, high = passage.ordinal - window, passage.ordinal + window
        return [p for p in self._by_doc[passage.doc_id] if low <= p.ordinal <= high]

    def document_passages(self, doc_id: str) -> list[Passage]:
        return list(self._by_doc.get(doc_id, []))
