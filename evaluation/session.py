"""One evaluation run end to end: questions -> index -> retrieval rows -> methods -> report.

The CLI (`thinkrag eval`) starts or locates the model server and calls `run_evaluation`;
tests call it directly with a scripted model server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.dataset import EvalQuestion, read_questions, sample_questions
from evaluation.harness import run_methods
from evaluation.methods import AgentMethod, ClosedBook, Method, Rag
from evaluation.records import QuestionResult
from evaluation.report import Report, aggregate, render_markdown
from evaluation.retrieval_rows import RetrievalRow, evaluate_retrieval
from retrieval.types import Embedder, Retriever

if TYPE_CHECKING:
    from agent.config import AgentConfig, AnswerStyle
    from agent.llm.types import ReasoningModel
    from retrieval.indexing.job_types import JobProgress

ALL_METHODS: tuple[str, ...] = ("closed-book", "rag", "rag-multihop", "agent")
RETRIEVAL_FILE = "retrieval.json"
REPORT_MD = "report.md"
REPORT_JSON = "report.json"


class EvalUsageError(ValueError):
    """The evaluation was asked for something inconsistent; the message says what to pass."""


@dataclass(slots=True)
class EvalPlan:
    dataset: Path
    out_dir: Path
    methods: tuple[str, ...] = ALL_METHODS
    limit: int | None = None  # the first N questions
    sample: int | None = None  # or N questions drawn per dataset share (seeded)
    seed: int = 0
    full_corpus: bool = False  # with a limit or sample, still pool every question's passages
    embedder_spec: str | None = None
    embedder: Embedder | None = None  # an already-built embedder (tests); wins over the spec
    index_dir: Path | None = None
    cache_root: Path | None = None
    model_cache: Path | None = None  # where a built embedder model lives (Settings.cache_root)
    concurrency: int = 2
    top_k: int = 5
    timeout: float | None = None
    retry_failed: bool = False  # on resume, ask again where the latest record is a failure
    retrieval_only: bool = False
    retrieval_rows: bool = True
    agent_config: AgentConfig | None = None
    # The agent is asked for the answer in a few words on its first line, as closed-book and
    # rag are; "cited" keeps the service's default answer (a sentence with citations).
    answer_style: AnswerStyle = "short"
    model_label: str | None = None
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class EvalHooks:
    """Progress callbacks (the CLI wires rich progress bars to these)."""

    index_progress: JobProgress | None = None
    on_stage: Callable[[str, int], None] | None = None  # (stage name, total units)
    on_advance: Callable[[], None] | None = None
    on_result: Callable[[QuestionResult], None] | None = None


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise EvalUsageError(
            f"unknown method(s) {unknown}; choose from {', '.join(ALL_METHODS)} or 'all'"
        )
    return tuple(dict.fromkeys(methods))


def select_questions(plan: EvalPlan) -> list[EvalQuestion]:
    """The questions this run evaluates: all, the first `limit`, or a stratified sample."""
    if plan.limit is not None and plan.sample is not None:
        raise EvalUsageError("pass --limit N (first N questions) or --sample N, not both")
    if plan.sample is None:
        return read_questions(plan.dataset, limit=plan.limit)
    return sample_questions(read_questions(plan.dataset), plan.sample, seed=plan.seed)


def corpus_questions(plan: EvalPlan, questions: Sequence[EvalQuestion]) -> list[EvalQuestion]:
    """Whose passages form the corpus: the evaluated questions, or all with --full-corpus."""
    subset = plan.limit is not None or plan.sample is not None
    if not subset or not plan.full_corpus:
        return list(questions)
    return read_questions(plan.dataset)


def build_retrievers(
    index_dir: Path, embedder: Embedder | None = None, model_cache: Path | None = None
) -> dict[str, Retriever]:
    """bm25, dense and hybrid views of one index, plus the multi-hop strategy over hybrid."""
    from retrieval.disk.generation import open_index
    from retrieval.search.multihop import MultiHopRetriever
    from retrieval.search.retriever import FaissRetriever

    reader = open_index(index_dir, embedder=embedder)
    hybrid = FaissRetriever(reader, mode="hybrid", embedder=embedder, model_cache=model_cache)
    bm25 = FaissRetriever(reader, mode="bm25")
    dense = FaissRetriever(reader, mode="dense", embedder=hybrid.embedder)
    return {
        "bm25": bm25,
        "dense": dense,
        "hybrid": hybrid,
        "multihop(hybrid)": MultiHopRetriever(hybrid, link_retriever=bm25),
    }


def make_methods(
    names: Sequence[str],
    model: ReasoningModel | None,
    retrievers: dict[str, Retriever],
    plan: EvalPlan,
) -> list[Method]:
    if model is None:
        raise EvalUsageError("answer methods need a model: pass --model URL or --profile NAME")
    out: list[Method] = []
    for name in names:
        if name == "closed-book":
            out.append(ClosedBook(model))
        elif name == "rag":
            out.append(Rag(model, retrievers["hybrid"], k=plan.top_k))
        elif name == "rag-multihop":
            out.append(Rag(model, retrievers["multihop(hybrid)"], k=plan.top_k, name=name))
        elif name == "agent":
            from agent.config import AgentConfig

            config = plan.agent_config or AgentConfig.model_validate({})
            config = config.model_copy(update={"answer_style": plan.answer_style})
            out.append(AgentMethod(model, retrievers["hybrid"], config))
    return out


def _retrieval_rows(
    plan: EvalPlan,
    questions: Sequence[EvalQuestion],
    retrievers: dict[str, Retriever],
    hooks: EvalHooks,
) -> list[RetrievalRow]:
    """Computed once per output dir and question set, then read back on resume."""
    path = plan.out_dir / RETRIEVAL_FILE
    ids = sorted(q.id for q in questions)
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("ids") == ids:
            return [RetrievalRow.model_validate(r) for r in saved["rows"]]
    if hooks.on_stage is not None:
        hooks.on_stage("retrieval rows", len(questions) * len(retrievers))
    rows = evaluate_retrieval(questions, retrievers, on_question=hooks.on_advance)
    payload = {"ids": ids, "rows": [r.model_dump(mode="json") for r in rows]}
    path.write_text(json.dumps(payload), encoding="utf-8")
    return rows


async def run_evaluation(
    plan: EvalPlan, model: ReasoningModel | None, hooks: EvalHooks | None = None
) -> Report:
    """Run the plan; writes results.jsonl, report.md and report.json under `plan.out_dir`."""
    from evaluation.index_cache import ensure_eval_index
    from retrieval.embedders import DEFAULT_EMBEDDER

    hooks = hooks or EvalHooks()
    methods = () if plan.retrieval_only else check_methods(plan.methods)
    questions = select_questions(plan)
    if not questions:
        raise EvalUsageError(f"{plan.dataset} holds no questions; check the file and --limit")
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    embedder = plan.embedder.id if plan.embedder else plan.embedder_spec or DEFAULT_EMBEDDER
    needs_index = plan.retrieval_only or plan.retrieval_rows or set(methods) - {"closed-book"}
    retrievers: dict[str, Retriever] = {}
    index_dir: Path | None = None
    if needs_index:
        built, _ = await asyncio.to_thread(
            ensure_eval_index,
            corpus_questions(plan, questions),
            embedder,
            index_dir=plan.index_dir,
            cache_root=plan.cache_root or plan.out_dir / "index-cache",
            progress=hooks.index_progress,
            embedder=plan.embedder,
            model_cache=plan.model_cache,
        )
        index_dir = built
        retrievers = await asyncio.to_thread(
            build_retrievers, built, plan.embedder, plan.model_cache
        )
    rows: list[RetrievalRow] = []
    if retrievers and (plan.retrieval_only or plan.retrieval_rows):
        rows = await asyncio.to_thread(_retrieval_rows, plan, questions, retrievers, hooks)
    results: list[QuestionResult] = []
    if methods:
        runnable = make_methods(methods, model, retrievers, plan)
        if hooks.on_stage is not None:
            hooks.on_stage("questions", len(questions) * len(runnable))

        def started(total: int, pending: int) -> None:
            if hooks.on_advance is not None:
                for _ in range(total - pending):
                    hooks.on_advance()

        def finished(result: QuestionResult) -> None:
            if hooks.on_advance is not None:
                hooks.on_advance()
            if hooks.on_result is not None:
                hooks.on_result(result)

        results = await run_methods(
            questions,
            runnable,
            plan.out_dir,
            concurrency=plan.concurrency,
            timeout=plan.timeout,
            retry_failed=plan.retry_failed,
            on_start=started,
            on_result=finished,
        )
    report = Report(
        dataset_file=plan.dataset.name,
        questions=len(questions),
        model=plan.model_label or (model.model_name if model is not None else None),
        embedder=embedder if needs_index else None,
        index_dir=str(index_dir) if index_dir else None,
        rows=aggregate(results),
        retrieval=rows,
        note=plan.note,
    )
    write_report(report, plan.out_dir)
    return report


def write_report(report: Report, out_dir: Path) -> None:
    (out_dir / REPORT_JSON).write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out_dir / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
