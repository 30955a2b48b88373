"""Retrieval-only rows (no model): recall@k and all-gold@k of retrievers over an eval set."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from evaluation.dataset import EvalQuestion, gold_ids
from evaluation.metrics import all_gold_at_k, recall_at_k
from retrieval.types import Retriever

DEFAULT_KS: tuple[int, ...] = (2, 5, 10, 20)
OVERALL = "all"


class RetrievalRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    system: str
    dataset: str
    n: int
    recall: dict[int, float]
    all_gold: dict[int, float]


def ranked_doc_ids(retriever: Retriever, question: str, depth: int) -> list[str]:
    """Doc ids in rank order; several chunks of one document count as one entry."""
    return list(dict.fromkeys(hit.doc_id for hit in retriever.search(question, k=depth)))


def evaluate_retrieval(
    questions: Sequence[EvalQuestion],
    retrievers: Mapping[str, Retriever],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    on_question: Callable[[], None] | None = None,
) -> list[RetrievalRow]:
    """One row per (system, dataset) plus an overall row per system."""
    depth = max(ks)
    rows: list[RetrievalRow] = []
    for system, retriever in retrievers.items():
        per_dataset: dict[str, list[tuple[dict[int, float], dict[int, float]]]] = {}
        for question in questions:
            ranked = ranked_doc_ids(retriever, question.question, depth)
            gold = gold_ids(question)
            recall = {k: recall_at_k(ranked, gold, k) for k in ks}
            full = {k: float(all_gold_at_k(ranked, gold, k)) for k in ks}
            per_dataset.setdefault(question.dataset, []).append((recall, full))
            if on_question is not None:
                on_question()
        groups = dict(sorted(per_dataset.items()))
        groups[OVERALL] = [item for items in per_dataset.values() for item in items]
        for dataset, items in groups.items():
            n = len(items)
            rows.append(
                RetrievalRow(
                    system=system,
                    dataset=dataset,
                    n=n,
                    recall={k: sum(r[k] for r, _ in items) / n for k in ks},
                    all_gold={k: sum(a[k] for _, a in items) / n for k in ks},
                )
            )
    return rows
