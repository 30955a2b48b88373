"""A model-free multi-hop search strategy: search, read the top hits' names, search again.

Multi-hop questions name the first hop ("the inventor of the glass kazoo") but not the
second (the inventor's name is only in the first passage). One search with the question finds
the first hop; searching again with the names the top passages introduce (their titles,
capitalised entity spans, years, quoted names that the question does not already hold)
reaches the second hop. The rounds are fused with weighted reciprocal-rank fusion, so a
weak model sees second-hop passages inside the same passage budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from retrieval.types import Hit, Passage, Retriever, SearchFilters

_QUOTED = re.compile(r"\"([^\"]{2,80})\"")
# A run of capitalised words, allowing small joiners inside ("Tower and Bell", "Duke of York").
_CAPITALISED = re.compile(
    r"\b[A-Z][\w'’.-]*(?:\s+(?:(?:of|the|and|de|la|von|van|du|del|for|in|on)\s+)*[A-Z][\w'’.-]*)*"
)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_WORD = re.compile(r"\w+")
_DISAMBIGUATION = re.compile(r"\s*\([^)]*\)\s*$")
_SENTENCE_START_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "in",
        "on",
        "at",
        "of",
        "for",
        "by",
        "with",
        "from",
        "to",
        "and",
        "or",
        "but",
        "as",
        "it",
        "its",
        "he",
        "she",
        "they",
        "his",
        "her",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "after",
        "before",
        "during",
        "when",
        "while",
        "since",
        "until",
        "it",
        "is",
        "was",
        "were",
    ]
)


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def title_mentioned(title: str, text: str) -> bool:
    """True when `title` (without a trailing "(disambiguation)") occurs in `text` as words."""
    core = _norm(_DISAMBIGUATION.sub("", title))
    return bool(core) and f" {core} " in f" {_norm(text)} "


EXPANSION_KINDS = ("title", "entities", "links", "question")

# Words that open a question: capitalised only because they start it, never names.
_QUESTION_WORDS = frozenset(
    [
        "how",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "does",
        "do",
        "did",
        "is",
        "are",
        "was",
        "were",
        "can",
        "could",
        "should",
        "would",
        "will",
        "list",
        "name",
        "give",
        "tell",
        "compare",
        "explain",
        "describe",
    ]
)


def question_entities(question: str, *, limit: int = 4) -> list[str]:
    """The names a question holds (quoted, capitalised spans, years), without its
    interrogative opening; each is worth a search of its own."""
    spans = entity_spans(question, limit=limit + 2)
    return [s for s in spans if not _words(s) <= _QUESTION_WORDS | _SENTENCE_START_STOP][:limit]


class MultiHopConfigError(ValueError):
    """A MultiHopRetriever parameter is out of range."""


@dataclass(frozen=True, slots=True)
class ExpansionQuery:
    """One second-round query, with the rank of the first-round hit it came from."""

    text: str
    seed_rank: int
    kind: str  # "title" | "entities"


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def entity_spans(text: str, *, exclude: str = "", limit: int = 8) -> list[str]:
    """Quoted names, capitalised spans and years in `text` whose words are not all in `exclude`.

    Order of first appearance is kept (early mentions are usually the important ones).
    """
    seen_words = _words(exclude)
    found: list[str] = []
    candidates = [m.group(1) for m in _QUOTED.finditer(text)]
    candidates += [m.group(0) for m in _CAPITALISED.finditer(text)]
    candidates += [m.group(0) for m in _YEAR.finditer(text)]
    for raw in candidates:
        span = raw.strip(" .,'’-")
        words = _words(span)
        if not words or words <= _SENTENCE_START_STOP:
            continue
        if words <= seen_words:
            continue
        if span.lower() in (f.lower() for f in found):
            continue
        found.append(span)
        if len(found) >= limit:
            break
    return found


class MultiHopRetriever:
    """Wraps any Retriever; `search` runs the question, then expansion queries, and fuses.

    Parameters say how wide each round is: `first_k` hits are read in round one, the top
    `seeds` of them are expanded, each expansion query fetches `expansion_k` hits, and
    lists are fused with RRF (`rrf_k`) where the question's list weighs `question_weight`
    and each expansion list `expansion_weight` divided by its seed's rank (a shaky third
    hit should not outvote the question).

    The default strategy is `links`: for each of the top `seeds` hits, search each entity
    span of its text (`link_k` hits each, through `link_retriever`, e.g. the BM25 mode of
    the same index, since a name lookup is lexical and cheap) and keep the hits whose title
    the seed's text mentions; those lists weigh `link_weight` divided by the seed's rank.
    `title` and `entities` add question+title / question+entities queries instead.

    `question` searches each name the question itself holds ("DeepSeek-R1" in "How many
    parameters does DeepSeek-R1 activate?"), alone, weighted `question_entity_weight`: a
    long question's own search is dominated by its other words (here "parameters" pulls in
    every model's size table), so the passage about the named thing, which holds the link
    to the second hop, may not make the first list at all.
    """

    def __init__(
        self,
        base: Retriever,
        *,
        first_k: int = 20,
        seeds: int = 3,
        expansion_k: int = 10,
        expansions: Sequence[str] = ("links",),
        max_entities: int = 12,
        question_weight: float = 1.0,
        expansion_weight: float = 0.5,
        rrf_k: int = 60,
        link_k: int = 3,
        link_weight: float = 3.0,
        link_seeds: int | None = None,
        link_retriever: Retriever | None = None,
        question_entity_weight: float = 1.0,
    ) -> None:
        unknown = set(expansions) - set(EXPANSION_KINDS)
        if unknown:
            raise MultiHopConfigError(
                f"unknown expansion kinds {sorted(unknown)}; use one of {list(EXPANSION_KINDS)}"
            )
        for name, value in (("first_k", first_k), ("seeds", seeds), ("expansion_k", expansion_k)):
            if value < 1:
                raise MultiHopConfigError(f"{name} must be >= 1, got {value}")
        if rrf_k < 0 or min(question_weight, expansion_weight, question_entity_weight) < 0:
            raise MultiHopConfigError("rrf_k and the weights must be >= 0")
        self.base = base
        self.first_k = first_k
        self.seeds = seeds
        self.expansion_k = expansion_k
        self.expansions = tuple(expansions)
        self.max_entities = max_entities
        self.question_weight = question_weight
        self.expansion_weight = expansion_weight
        self.rrf_k = rrf_k
        self.link_k = link_k
        self.link_weight = link_weight
        self.link_seeds = seeds if link_seeds is None else link_seeds
        self.link_retriever = link_retriever or base
        self.question_entity_weight = question_entity_weight

    def expansion_queries(self, question: str, first: Sequence[Hit]) -> list[ExpansionQuery]:
        """The second-round queries built from the top first-round hits."""
        queries: list[ExpansionQuery] = []
        seen: set[str] = set()
        for rank, hit in enumerate(first[: self.seeds]):
            texts: list[tuple[str, str]] = []
            if "title" in self.expansions and hit.title:
                texts.append(("title", f"{question} {hit.title}"))
            if "entities" in self.expansions:
                spans = entity_spans(
                    hit.text, exclude=f"{question} {hit.title}", limit=self.max_entities
                )
                if spans:
                    texts.append(("entities", f"{question} {' '.join(spans)}"))
            for kind, text in texts:
                if text not in seen:
                    seen.add(text)
                    queries.append(ExpansionQuery(text=text, seed_rank=rank, kind=kind))
        return queries

    def linked_hits(self, seed: Hit, filters: SearchFilters | None) -> list[Hit]:
        """Passages whose title the seed's text mentions, found by searching its entity spans.

        This follows the implicit hyperlinks of an encyclopedic corpus: the first hop names
        the second hop, and a passage titled with that name is very likely it.
        """
        linked: list[Hit] = []
        seen = {seed.passage_id}
        for span in entity_spans(seed.text, exclude=seed.title, limit=self.max_entities):
            for hit in self.link_retriever.search(span, k=self.link_k, filters=filters):
                if hit.passage_id in seen or not title_mentioned(hit.title, seed.text):
                    continue
                seen.add(hit.passage_id)
                linked.append(hit)
        return linked

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        first = self.base.search(query, k=max(k, self.first_k), filters=filters)
        if not first:
            return []
        scores: dict[int, float] = {}
        hits: dict[int, Hit] = {}

        def add(ranked: Sequence[Hit], weight: float) -> None:
            for rank, hit in enumerate(ranked):
                hits.setdefault(hit.passage_id, hit)
                scores[hit.passage_id] = scores.get(hit.passage_id, 0.0) + weight / (
                    self.rrf_k + rank + 1
                )

        add(first, self.question_weight)
        for expansion in self.expansion_queries(query, first):
            ranked = self.base.search(expansion.text, k=self.expansion_k, filters=filters)
            add(ranked, self.expansion_weight / (expansion.seed_rank + 1))
        if "question" in self.expansions:
            for span in question_entities(query, limit=self.max_entities):
                ranked = self.base.search(span, k=self.expansion_k, filters=filters)
                add(ranked, self.question_entity_weight)
        if "links" in self.expansions:
            for rank, seed in enumerate(first[: self.link_seeds]):
                add(self.linked_hits(seed, filters), self.link_weight / (rank + 1))
        order = sorted(scores, key=lambda pid: (-scores[pid], pid))[:k]
        return [replace(hits[pid], score=scores[pid]) for pid in order]

    def get_passage(self, passage_id: int) -> Passage | None:
        return self.base.get_passage(passage_id)

    def neighbours(self, passage_id: int, window: int = 1) -> list[Passage]:
        return self.base.neighbours(passage_id, window)

    def document_passages(self, doc_id: str) -> list[Passage]:
        return self.base.document_passages(doc_id)
