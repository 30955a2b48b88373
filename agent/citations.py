"""Citation numbering and checking.

Every passage a tool returns gets a number that stays the same for the rest of the
thread, so `[3]` means one thing in every observation and in the answer. The final
answer may cite only numbers the run has handed out; anything else is removed and
reported, never silently kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.events import Source
from retrieval.types import Passage

# [3], [3, 5], [3][5]: the bracket forms small and large models actually write.
_CITE_GROUP_RE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_SEP_RE = re.compile(r"[,;]")
_BLANK_BEFORE_PUNCT_RE = re.compile(r"[ \t]+([.,;:!?])")
_BLANK_RUN_RE = re.compile(r"[ \t]{2,}")


class CitationRegistry:
    """Hands out stable numbers; wraps the `sources` mapping kept in the graph state."""

    def __init__(self, sources: Mapping[int, Source] | None = None) -> None:
        self.sources: dict[int, Source] = dict(sources or {})
        self._by_passage = {s.passage_id: n for n, s in self.sources.items()}

    def number_for(self, item: Passage | Source) -> int:
        """The citation number of a passage (a search hit is one), assigning the next free
        one the first time."""
        known = self._by_passage.get(item.passage_id)
        if known is not None:
            return known
        number = max(self.sources, default=0) + 1
        self.sources[number] = Source.cite(number, item)
        self._by_passage[item.passage_id] = number
        return number


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    text: str  # the answer with unknown citation markers removed
    cited: tuple[int, ...]  # known numbers, in order of first use
    removed: tuple[int, ...]  # unknown numbers the model used


def _group_numbers(match: re.Match[str]) -> list[int]:
    return [int(part.strip()) for part in _SEP_RE.split(match.group(1))]


def _may_become_group(tail: str) -> bool:
    """True when `tail` (starting at `[`) is the start of a citation group not yet closed.

    Every unfinished group needs either `]` or a digit and `]` to close, so trying both
    endings against the one group regex decides it without a second grammar.
    """
    return any(_CITE_GROUP_RE.fullmatch(tail + end) for end in ("]", "0]"))


def _tidy_spacing(text: str) -> str:
    """Close the gaps removed marks leave: no blank before punctuation, single blanks."""
    return _BLANK_RUN_RE.sub(" ", _BLANK_BEFORE_PUNCT_RE.sub(r"\1", text))


class CitationFilter:
    """`check_answer`'s text, produced incrementally as a streamed answer arrives.

    For any split of an answer into pieces, `feed(p1) + ... + feed(pn) + finish()` equals
    `check_answer(answer, known).text`, so text sent live never needs taking back. It holds
    back only what later text could still change: a `[` that may yet close as a citation
    group (the hold ends at the first character the group grammar rejects), and trailing
    whitespace (it may come before punctuation or end the answer).
    """

    def __init__(self, known: Iterable[int]) -> None:
        self._known = frozenset(known)
        self._raw = ""  # input from a possibly unfinished citation group on
        self._blank = ""  # marks settled; trailing whitespace awaiting the next character
        self._started = False  # whether anything was returned yet (leading blanks are cut)

    def feed(self, text: str) -> str:
        """Add streamed text; return the part of the checked answer that is now final."""
        settled, self._raw = self._marks(self._raw + text, final=False)
        return self._space(settled, final=False)

    def finish(self) -> str:
        """End of the answer: return whatever was held back, checked."""
        settled, self._raw = self._marks(self._raw, final=True)
        return self._space(settled, final=True)

    def _marks(self, text: str, *, final: bool) -> tuple[str, str]:
        """Rewrite citation groups; return (settled text, held tail)."""
        out: list[str] = []
        pos = 0
        while (start := text.find("[", pos)) >= 0:
            out.append(text[pos:start])
            match = _CITE_GROUP_RE.match(text, start)
            if match is not None:
                out.extend(f"[{n}]" for n in _group_numbers(match) if n in self._known)
                pos = match.end()
            elif not final and _may_become_group(text[start:]):
                return "".join(out), text[start:]
            else:
                out.append("[")
                pos = start + 1
        out.append(text[pos:])
        return "".join(out), ""

    def _space(self, text: str, *, final: bool) -> str:
        """Tidy spacing up to the last non-blank character (all of it when `final`)."""
        pending = self._blank + text
        cut = len(pending) if final else len(pending.rstrip())
        out, self._blank = _tidy_spacing(pending[:cut]), pending[cut:]
        if final:
            out = out.rstrip()
        if not self._started:
            out = out.lstrip()
            self._started = bool(out)
        return out


def cited_numbers(text: str) -> list[int]:
    out: list[int] = []
    for m in _CITE_GROUP_RE.finditer(text):
        for n in _group_numbers(m):
            if n not in out:
                out.append(n)
    return out


def check_answer(
    text: str, known: Iterable[int], extra_citations: Iterable[int] = ()
) -> CheckedAnswer:
    """Keep `[n]` markers that name a known source; drop and report the others.

    `extra_citations` are numbers the model listed outside the text (json/answer-tool
    `citations` field): known ones join the sources, unknown ones are reported. The text
    comes from `CitationFilter`, so a streamed answer and a checked one never differ.
    """
    known_set = set(known)
    cited: list[int] = []
    removed: list[int] = []
    for n in [*cited_numbers(text), *extra_citations]:
        target = cited if n in known_set else removed
        if n not in target:
            target.append(n)
    checker = CitationFilter(known_set)
    cleaned = checker.feed(text) + checker.finish()
    return CheckedAnswer(text=cleaned, cited=tuple(cited), removed=tuple(removed))


def cited_span(source: Source, limit: int = 600) -> str:
    """The span shown in a sources list: the passage text, cut on a word boundary."""
    text = source.text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")].rstrip() + " ..." if " " in cut else cut + " ..."
