"""Answer and retrieval metrics, with the SQuAD conventions multi-hop QA papers report.

Everything here is pure and works on strings and id sets, so the harness, the benchmark
scripts and the tests share one definition of each number.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and English articles, collapse whitespace (SQuAD v1.1)."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised alias, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(answer) for answer in answers))


def _f1(prediction: str, answer: str) -> float:
    pred_norm = normalize_answer(prediction)
    gold_norm = normalize_answer(answer)
    # Yes/no/noanswer must match exactly: a partial token overlap means nothing there.
    special = {"yes", "no", "noanswer"}
    if (pred_norm in special or gold_norm in special) and pred_norm != gold_norm:
        return 0.0
    pred_tokens = pred_norm.split()
    gold_tokens = gold_norm.split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Token-level F1 against the best-matching alias (0.0 when there are no aliases)."""
    return max((_f1(prediction, answer) for answer in answers), default=0.0)


def supporting_recall(retrieved: Iterable[str], gold: Collection[str]) -> float:
    """Share of gold passages found among `retrieved` (1.0 when there is no gold)."""
    if not gold:
        return 1.0
    found = set(retrieved) & set(gold)
    return len(found) / len(set(gold))


def all_gold(retrieved: Iterable[str], gold: Collection[str]) -> bool:
    """True when every gold passage was retrieved."""
    return set(gold) <= set(retrieved)


def recall_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Share of gold passages in the first k of a ranking (duplicates count once)."""
    return supporting_recall(ranked[:k], gold)


def all_gold_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> bool:
    return all_gold(ranked[:k], gold)


def citation_precision(cited: Collection[str], gold: Collection[str]) -> float | None:
    """Share of cited passages that are gold supporting passages; None when nothing is cited."""
    cited_set = set(cited)
    if not cited_set:
        return None
    return len(cited_set & set(gold)) / len(cited_set)


def citation_validity(cited: Collection[str], retrieved: Collection[str]) -> float | None:
    """Share of cited passages that were actually retrieved; None when nothing is cited."""
    cited_set = set(cited)
    if not cited_set:
        return None
    return len(cited_set & set(retrieved)) / len(cited_set)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean over the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
