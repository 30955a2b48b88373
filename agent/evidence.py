"""Model-free reading of the evidence: the sentence most likely to hold the answer, and
whether a drafted answer merely copies the passages it was shown.

Small models, when told to stop and answer, often paste their observations back; and when
no model call is possible the fallback used to paste passages too. Both leave the reader
to find the answer. Here a sentence is scored by how many of the question's content terms
it contains (the BM25 tokenizer's stems and Chinese words), which is enough to point at
the sentence that states a figure or a name, and a draft is a dump when most of it is
long word runs lifted verbatim from the passages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.events import Source
from retrieval.terms import CJK_CLASS, bm25_tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|(?<=[。！？；])|\n{2,}|\n(?=[-*#\d])")
_MARKUP = re.compile(r"^[\s#>*\-\d.)]+|[*_`]+")
_CITE = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
# Latin words, or single characters of scripts written without spaces.
_WORDS = re.compile(rf"[{CJK_CLASS}]|[^\W{CJK_CLASS}]+")
# "How many ..." / 多少: the answer sentence states a quantity.
_ASKS_QUANTITY = re.compile(r"\bhow (many|much|large|big|long)\b|多少|几|多大|多长", re.I)
_QUANTITY = re.compile(r"\d|[零一二两三四五六七八九十百千万亿]{2,}")
_SHINGLE = 6  # words in a run counted as copied
_DUMP_SHARE = 0.6  # share of the draft's words inside copied runs that makes it a dump
_DUMP_MIN_WORDS = 40  # short answers quoting one clause are fine


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence of a passage and the citation number of that passage."""

    text: str
    number: int
    score: float


def sentences(text: str) -> list[str]:
    """Sentence-like pieces of a passage, markup stripped, Chinese punctuation aware."""
    pieces = (_MARKUP.sub("", p).strip() for p in _SENTENCE_END.split(text))
    return [" ".join(p.split()) for p in pieces if len(p.strip()) > 3]


def likely_span(
    question: str, sources: Mapping[int, Source], numbers: Iterable[int]
) -> Span | None:
    """The sentence among `numbers`' passages sharing the most question terms, if any.

    Each shared term counts once, weighted by how rare it is among the candidate sentences
    (so "DeepSeek" in every sentence decides less than "activated"); a short sentence wins
    a tie, since the answer is usually stated plainly; a question asking for a quantity
    prefers sentences that state one.
    """
    wanted = set(bm25_tokenize([question])[0])
    if not wanted:
        return None
    candidates = [(n, s) for n in numbers if n in sources for s in sentences(sources[n].text)]
    if not candidates:
        return None
    tokens = bm25_tokenize([s for _, s in candidates])
    df: dict[str, int] = {}
    for terms in tokens:
        for t in set(terms) & wanted:
            df[t] = df.get(t, 0) + 1
    quantity = _ASKS_QUANTITY.search(question) is not None
    best: Span | None = None
    for (n, text), terms in zip(candidates, tokens, strict=True):
        shared = set(terms) & wanted
        if not shared:
            continue
        score = sum(math.log(1 + len(candidates) / df[t]) for t in shared)
        score /= 1 + 0.02 * len(terms)
        if quantity and _QUANTITY.search(text):
            score *= 1.5
        if best is None or score > best.score:
            best = Span(text=text, number=n, score=score)
    return best


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def copied_share(draft: str, passages: Iterable[str]) -> float:
    """Share of the draft's words that sit in runs of >= 6 words copied from `passages`."""
    words = _WORDS.findall(_CITE.sub(" ", draft).lower())
    if len(words) < _SHINGLE:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    for text in passages:
        seen |= _shingles(_WORDS.findall(text.lower()))
    covered = [False] * len(words)
    for i in range(len(words) - _SHINGLE + 1):
        if tuple(words[i : i + _SHINGLE]) in seen:
            for j in range(i, i + _SHINGLE):
                covered[j] = True
    return sum(covered) / len(words)


def is_dump(draft: str, passages: Iterable[str]) -> bool:
    """True when a draft is mostly pasted passage text rather than an answer."""
    if len(_WORDS.findall(draft)) < _DUMP_MIN_WORDS:
        return False
    return copied_share(draft, passages) >= _DUMP_SHARE
