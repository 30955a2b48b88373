"""Aggregate per-question results into report rows and render them (markdown and JSON).

Tables follow the FlashRAG / Search-R1 layout: one row per method, one column group per
dataset, so a reader compares methods down a column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from evaluation.metrics import mean
from evaluation.records import QuestionResult
from evaluation.retrieval_rows import OVERALL, RetrievalRow

DATASET_LABELS = {"hotpotqa": "HotpotQA", "2wikimultihopqa": "2Wiki", "musique": "MuSiQue"}
METHOD_ORDER = ("closed-book", "rag", "rag-multihop", "agent")


class MetricRow(BaseModel):
    """Averages of one method over one dataset (or `all`)."""

    model_config = ConfigDict(frozen=True)

    method: str
    dataset: str
    n: int
    em: float
    f1: float
    supporting_recall: float | None
    all_gold: float | None
    citation_precision: float | None
    citation_validity: float | None
    steps: float
    searches: float
    prompt_tokens: float
    completion_tokens: float
    reasoning_tokens: float
    seconds: float
    failures: dict[str, int] = Field(default_factory=dict)


class Report(BaseModel):
    dataset_file: str
    questions: int
    model: str | None = None
    embedder: str | None = None
    index_dir: str | None = None
    rows: list[MetricRow] = Field(default_factory=list)
    retrieval: list[RetrievalRow] = Field(default_factory=list)
    note: str = ""


def _row(method: str, dataset: str, results: Sequence[QuestionResult]) -> MetricRow:
    def avg(values: Iterable[float]) -> float:
        return mean(values) or 0.0

    return MetricRow(
        method=method,
        dataset=dataset,
        n=len(results),
        em=avg(r.em for r in results),
        f1=avg(r.f1 for r in results),
        supporting_recall=mean(r.supporting_recall for r in results),
        all_gold=mean(None if r.all_gold is None else float(r.all_gold) for r in results),
        citation_precision=mean(r.citation_precision for r in results),
        citation_validity=mean(r.citation_validity for r in results),
        steps=avg(r.steps for r in results),
        searches=avg(r.searches for r in results),
        prompt_tokens=avg(r.prompt_tokens for r in results),
        completion_tokens=avg(r.completion_tokens for r in results),
        reasoning_tokens=avg(r.reasoning_tokens for r in results),
        seconds=avg(r.seconds for r in results),
        failures=dict(Counter(r.failure for r in results if r.failure)),
    )


def _method_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def aggregate(results: Iterable[QuestionResult]) -> list[MetricRow]:
    """Rows per (method, dataset) and per method overall (`all`)."""
    grouped: dict[str, dict[str, list[QuestionResult]]] = {}
    for result in results:
        grouped.setdefault(result.method, {}).setdefault(result.dataset, []).append(result)
    rows: list[MetricRow] = []
    for method in sorted(grouped, key=_method_key):
        by_dataset = grouped[method]
        for dataset in sorted(by_dataset):
            rows.append(_row(method, dataset, by_dataset[dataset]))
        rows.append(_row(method, OVERALL, [r for rs in by_dataset.values() for r in rs]))
    return rows


def _fmt(value: float | None, digits: int = 1, scale: float = 100.0) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def _label(dataset: str) -> str:
    return "Overall" if dataset == OVERALL else DATASET_LABELS.get(dataset, dataset)


def render_markdown(report: Report) -> str:
    """The report as markdown: answers, retrieval/cost per method, retrieval-only rows."""
    out = [f"# Evaluation: {report.dataset_file}", ""]
    out.append(
        f"{report.questions} questions; model `{report.model or '-'}`; "
        f"embedder `{report.embedder or '-'}`."
    )
    if report.note:
        out += ["", report.note]
    if report.rows:
        datasets = [*sorted({r.dataset for r in report.rows if r.dataset != OVERALL}), OVERALL]
        methods = sorted({r.method for r in report.rows}, key=_method_key)
        index = {(r.method, r.dataset): r for r in report.rows}
        out += ["", "## Answers (EM / F1, %)", ""]
        out.append("| Method | " + " | ".join(f"{_label(d)} EM | F1" for d in datasets) + " |")
        out.append("|---|" + "---:|---:|" * len(datasets))
        for method in methods:
            cells = []
            for d in datasets:
                row = index.get((method, d))
                cells += [_fmt(row.em), _fmt(row.f1)] if row else ["–", "–"]
            out.append(f"| {method} | " + " | ".join(cells) + " |")
        out += ["", "## Retrieval, citations and cost per question (overall)", ""]
        out.append(
            "| Method | n | sup. recall | all-gold | cite prec. | cite valid | steps | searches "
            "| prompt tok | compl. tok | reason. tok | seconds | failures |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for method in methods:
            row = index[(method, OVERALL)]
            failures = ", ".join(f"{k}: {v}" for k, v in sorted(row.failures.items())) or "0"
            out.append(
                f"| {method} | {row.n} | {_fmt(row.supporting_recall)} | {_fmt(row.all_gold)} "
                f"| {_fmt(row.citation_precision)} | {_fmt(row.citation_validity)} "
                f"| {row.steps:.1f} | {row.searches:.1f} | {row.prompt_tokens:.0f} "
                f"| {row.completion_tokens:.0f} | {row.reasoning_tokens:.0f} "
                f"| {row.seconds:.2f} | {failures} |"
            )
    if report.retrieval:
        out += render_retrieval(report.retrieval)
    return "\n".join(out) + "\n"


def render_retrieval(rows: Sequence[RetrievalRow]) -> list[str]:
    out = ["", "## Retrieval only (no model; open corpus)", ""]
    datasets = [*sorted({r.dataset for r in rows if r.dataset != OVERALL}), OVERALL]
    systems = list(dict.fromkeys(r.system for r in rows))
    index = {(r.system, r.dataset): r for r in rows}
    ks = sorted(rows[0].recall)
    k_ref = 10 if 10 in ks else ks[-1]
    out.append(f"all-gold@{k_ref} per dataset (share of questions with every gold passage):")
    out += ["", "| System | " + " | ".join(_label(d) for d in datasets) + " |"]
    out.append("|---|" + "---:|" * len(datasets))
    for system in systems:
        cells = [
            _fmt(index[(system, d)].all_gold[k_ref], 3, 1.0) if (system, d) in index else "–"
            for d in datasets
        ]
        out.append(f"| {system} | " + " | ".join(cells) + " |")
    for d in datasets:
        out += ["", f"**{_label(d)}** (n={index[(systems[0], d)].n})", ""]
        header = [f"R@{k}" for k in ks] + [f"all@{k}" for k in ks]
        out.append("| System | " + " | ".join(header) + " |")
        out.append("|---|" + "---:|" * len(header))
        for system in systems:
            row = index.get((system, d))
            if row is None:
                continue
            cells = [f"{row.recall[k]:.3f}" for k in ks] + [f"{row.all_gold[k]:.3f}" for k in ks]
            out.append(f"| {system} | " + " | ".join(cells) + " |")
    return out
