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

from agent.state import SourceRecord
from retrieval.types import Hit, Passage

# [3], [3, 5], [3][5]: the bracket forms small and large models actually write.
_CITE_GROUP_RE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")


class CitationRegistry:
    """Hands out stable numbers; wraps the `sources` mapping kept in the graph state."""

    def __init__(self, sources: Mapping[int, SourceRecord] | None = None) -> None:
        self.sources: dict[int, SourceRecord] = dict(sources or {})
        self._by_passage = {s.passage_id: n for n, s in self.sources.items()}

    def number_for(self, item: Hit | Passage | SourceRecord) -> int:
        """The citation number of a passage, assigning the next free one the first time."""
        known = self._by_passage.get(item.passage_id)
        if known is not None:
            return known
        number = max(self.sources, default=0) + 1
        doc_id = item.doc_id
        record = SourceRecord(
            number=number,
            passage_id=item.passage_id,
            doc_id=doc_id,
            title=item.title,
            source=item.source,
            start=item.start,
            end=item.end,
            text=item.text,
        )
        self.sources[number] = record
        self._by_passage[item.passage_id] = number
        return number


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    text: str  # the answer with unknown citation markers removed
    cited: tuple[int, ...]  # known numbers, in order of first use
    removed: tuple[int, ...]  # unknown numbers the model used


def cited_numbers(text: str) -> list[int]:
    out: list[int] = []
    for m in _CITE_GROUP_RE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part.strip())
            if n not in out:
                out.append(n)
    return out


def check_answer(
    text: str, known: Iterable[int], extra_citations: Iterable[int] = ()
) -> CheckedAnswer:
    """Keep `[n]` markers that name a known source; drop and report the others.

    `extra_citations` are numbers the model listed outside the text (json/answer-tool
    `citations` field): known ones join the sources, unknown ones are reported.
    """
    known_set = set(known)
    cited: list[int] = []
    removed: list[int] = []

    def note(n: int) -> None:
        target = cited if n in known_set else removed
        if n not in target:
            target.append(n)

    def rewrite(m: re.Match[str]) -> str:
        numbers = [int(p.strip()) for p in re.split(r"[,;]", m.group(1))]
        for n in numbers:
            note(n)
        kept = [n for n in numbers if n in known_set]
        return "".join(f"[{n}]" for n in kept)

    cleaned = _CITE_GROUP_RE.sub(rewrite, text)
    for n in extra_citations:
        note(n)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    return CheckedAnswer(text=cleaned, cited=tuple(cited), removed=tuple(removed))


def cited_span(source: SourceRecord, limit: int = 600) -> str:
    """The span shown in a sources list: the passage text, cut on a word boundary."""
    text = source.text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")].rstrip() + " ..." if " " in cut else cut + " ..."
