"""Split document text into overlapping passages with exact character offsets.

Passages are packed from whole sentences up to a token budget, so a passage rarely cuts a
sentence; consecutive passages share whole trailing sentences (the overlap) so a fact
spanning a boundary is still retrievable. Tokens are regex words for space-delimited
scripts and single characters for CJK (about what a CJK-aware model's tokenizer sees).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.terms import CJK_CLASS

_TOKEN = re.compile(rf"[{CJK_CLASS}]|[^\W{CJK_CLASS}]+")
_CLOSERS = "\"'”’」』）)\\]"
# Candidate sentence ends: newlines, CJK full stops (no space needed), Latin stops + space.
# Linear time on any input: a run of stops is matched only from its first character (the
# lookbehinds) and never backtracked into (possessive `++`/`*+`), so a megabyte of "....."
# costs one pass, not one pass per dot.
_BOUNDARY = re.compile(
    rf"\n|(?<![。！？；!?])(?:[!?]*+[。！？；])++[{_CLOSERS}]*+"
    rf"|(?<![.!?])[.!?]++[{_CLOSERS}]*+(?=\s)|(?<![!?])[!?]++[{_CLOSERS}]*+"
)
# Weaker boundaries, used only inside a sentence longer than the whole budget.
_CLAUSE = re.compile(rf"[，、：,;:][{_CLOSERS}]*")
# fmt: off
_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co", "corp",
    "no", "vol", "fig", "approx", "dept", "est", "gen", "gov", "lt", "col", "sgt", "capt",
    "rev", "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec",
))
# fmt: on
_LAST_WORD = re.compile(r"([\w.]+)$")


@dataclass(frozen=True, slots=True)
class Span:
    """`text[start:end]` is the passage; never starts or ends with whitespace."""

    start: int
    end: int


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def _strip(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def _is_abbreviation(text: str, stop: int, after: int) -> bool:
    """True when the '.' at `stop` ends an abbreviation or initial, not a sentence."""
    if text[stop] != ".":
        return False
    match = _LAST_WORD.search(text, max(0, stop - 20), stop)
    word = match.group(1).lower() if match else ""
    if word in _ABBREVIATIONS or re.fullmatch(r"(\w\.)+\w", word):
        return True
    if len(word) == 1 and word.isalpha():
        return True  # an initial such as "J. R. R. Tolkien"
    nxt = text[after : after + 40].lstrip()
    return bool(nxt) and nxt[0].islower()


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (whitespace-stripped); newlines always end a sentence."""
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group() != "\n" and _is_abbreviation(text, match.start(), match.end()):
            continue
        span = _strip(text, start, match.end())
        if span:
            spans.append(span)
        start = match.end()
    span = _strip(text, start, len(text))
    if span:
        spans.append(span)
    return spans


def _split_clauses(text: str, span: Span) -> list[Span]:
    pieces: list[Span] = []
    start = span.start
    for match in _CLAUSE.finditer(text, span.start, span.end):
        piece = _strip(text, start, match.end())
        if piece:
            pieces.append(piece)
        start = match.end()
    tail = _strip(text, start, span.end)
    if tail:
        pieces.append(tail)
    return pieces


def _hard_split(text: str, span: Span, max_tokens: int) -> list[Span]:
    tokens = list(_TOKEN.finditer(text, span.start, span.end))
    pieces: list[Span] = []
    for first in range(0, len(tokens), max_tokens):
        start = span.start if first == 0 else tokens[first].start()
        nxt = first + max_tokens
        end = span.end if nxt >= len(tokens) else tokens[nxt].start()
        piece = _strip(text, start, end)
        if piece:
            pieces.append(piece)
    return pieces


def _units(text: str, max_tokens: int) -> list[tuple[Span, int]]:
    """Sentences, with those over budget split at clauses, then at token boundaries."""
    units: list[tuple[Span, int]] = []
    for sentence in split_sentences(text):
        n = count_tokens(text[sentence.start : sentence.end])
        if n <= max_tokens:
            units.append((sentence, n))
            continue
        for clause in _split_clauses(text, sentence):
            m = count_tokens(text[clause.start : clause.end])
            if m <= max_tokens:
                units.append((clause, m))
            else:
                units.extend(
                    (p, count_tokens(text[p.start : p.end]))
                    for p in _hard_split(text, clause, max_tokens)
                )
    return _merge_clauses(units, max_tokens)


def _merge_clauses(units: list[tuple[Span, int]], max_tokens: int) -> list[tuple[Span, int]]:
    """Token-free fragments (stray punctuation) join the previous unit."""
    merged: list[tuple[Span, int]] = []
    for span, n in units:
        if n == 0 and merged:
            prev, pn = merged[-1]
            merged[-1] = (Span(prev.start, span.end), pn)
        else:
            merged.append((span, n))
    return merged


def chunk_text(text: str, *, max_tokens: int = 180, overlap_tokens: int = 30) -> list[Span]:
    """Pack sentences into passages of at most `max_tokens` tokens, sharing up to
    `overlap_tokens` (at most half the budget) tokens of whole trailing sentences with the
    previous passage."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if overlap_tokens < 0:
        raise ValueError(f"overlap_tokens must be 0 or more, got {overlap_tokens}")
    overlap_tokens = min(overlap_tokens, max_tokens // 2)  # small budgets keep making progress
    units = _units(text, max_tokens)
    passages: list[Span] = []
    i = 0
    while i < len(units):
        first, total = i, 0
        while i < len(units) and (i == first or total + units[i][1] <= max_tokens):
            total += units[i][1]
            i += 1
        passages.append(Span(units[first][0].start, units[i - 1][0].end))
        if i >= len(units):
            break
        # Step back over whole trailing sentences that fit the overlap budget, never
        # back to `first` (progress) and leaving room for the next sentence.
        back, carried = i, 0
        while (
            back - 1 > first
            and carried + units[back - 1][1] <= overlap_tokens
            and carried + units[back - 1][1] + units[i][1] <= max_tokens
        ):
            back -= 1
            carried += units[back][1]
        i = back
    return passages
