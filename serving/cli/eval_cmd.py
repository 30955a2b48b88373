"""`thinkrag eval`: answer quality and multi-hop retrieval on an eval-format jsonl file.

With `--limit N` (the first N questions) or `--sample N` (N questions keeping each dataset's
share) the corpus pools only the passages of the evaluated questions (a smaller, faster
index: CI uses this); `--full-corpus` pools every question of the file, the standard
open-corpus setting the README's tables use.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

if TYPE_CHECKING:
    from agent.config import AnswerStyle
    from evaluation.report import Report
    from evaluation.session import EvalPlan
    from serving.runtime import Runtime


def _run_compare(a: Path, b: Path) -> None:
    from evaluation.compare import ComparisonError, compare_runs, render_comparison

    try:
        typer.echo(render_comparison(compare_runs(a, b)))
    except ComparisonError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def evaluate(
    dataset: Path | None = typer.Argument(None, help="Eval-format jsonl (see the README)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="First N questions only."),
    sample: int | None = typer.Option(
        None, "--sample", min=1, help="N questions drawn per dataset share (see --seed)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample."),
    profile: str | None = typer.Option(None, "--profile", help="Model profile, e.g. local."),
    model: str | None = typer.Option(None, "--model", help="OpenAI base URL ending in /v1."),
    model_name: str | None = typer.Option(None, "--model-name", help="Model id at --model."),
    index: Path | None = typer.Option(None, "--index", help="Index dir to build or reuse."),
    method: str = typer.Option(
        "all", "--method", help="closed-book, rag, rag-multihop, agent or all (comma list ok)."
    ),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Questions in flight."),
    out: Path = typer.Option(Path("eval-out"), "--out", help="Output dir (resumable)."),
    compare: tuple[Path, Path] | None = typer.Option(
        None, "--compare", help="Compare two output dirs: A B (paired bootstrap)."
    ),
    retrieval_only: bool = typer.Option(False, "--retrieval-only", help="No model rows."),
    embedder: str | None = typer.Option(None, "--embedder", help="Embedder spec for the index."),
    full_corpus: bool = typer.Option(
        False, "--full-corpus", help="With --limit/--sample, pool every question's passages."
    ),
    answer_style: str = typer.Option(
        "short", "--answer-style", help="Agent answers: short (scored first line) or cited."
    ),
    top_k: int = typer.Option(5, "--top-k", min=1, max=10, help="Passages shown to rag."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per question and method."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="On resume, ask again where the last try failed."
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Where eval indexes are cached (default: the thinkrag cache's eval-index).",
    ),
) -> None:
    """Evaluate closed-book, RAG and the agent on multi-hop QA; write results and reports."""
    if compare is not None:
        _run_compare(*compare)
        return
    if dataset is None:
        typer.echo("error: pass DATASET.jsonl (or --compare A B)", err=True)
        raise typer.Exit(2)
    from evaluation.session import ALL_METHODS, EvalPlan, check_methods
    from serving.cli.common import fail, runtime_from_flags

    methods = ALL_METHODS if method == "all" else tuple(m.strip() for m in method.split(","))
    try:
        methods = check_methods(methods)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if limit is not None and sample is not None:
        typer.echo("error: pass --limit N (first N questions) or --sample N, not both", err=True)
        raise typer.Exit(2)
    if answer_style not in ("short", "cited"):
        typer.echo(f"error: --answer-style {answer_style!r}: choose short or cited", err=True)
        raise typer.Exit(2)
    runtime = runtime_from_flags(profile=profile, model_url=model, model_name=model_name)
    if model and profile and profile != "local":
        typer.echo("note: --model given; the profile only sets agent options", err=True)
    plan = EvalPlan(
        dataset=dataset,
        out_dir=out,
        methods=methods,
        limit=limit,
        sample=sample,
        seed=seed,
        answer_style=cast("AnswerStyle", answer_style),
        full_corpus=full_corpus,
        embedder_spec=embedder,
        index_dir=index,
        cache_root=cache_dir or runtime.settings.eval_index_cache,
        model_cache=runtime.settings.cache_root,
        concurrency=concurrency,
        top_k=top_k,
        timeout=timeout,
        retry_failed=retry_failed,
        retrieval_only=retrieval_only,
    )
    plan.agent_config = runtime.agent_config
    from serving.models.launcher import LaunchError
    from serving.models.local import LocalModelError

    with runtime:
        use_model = not retrieval_only
        if use_model and not runtime.model_url_configured:
            if not runtime.wants_local_model:
                fail("pass --model URL, or --profile local to start vLLM")
            try:
                url = runtime.start_local_model()
            except (LaunchError, LocalModelError) as exc:
                fail(str(exc), code=1)
            assert runtime.profile is not None
            typer.echo(f"started vLLM ({runtime.profile.name}) at {url}", err=True)
        from evaluation.errors import CorpusError

        try:
            report = asyncio.run(_run(plan, runtime if use_model else None))
        except CorpusError as exc:  # a missing or malformed eval file: the message says why
            fail(str(exc))
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {out}/results.jsonl, report.md, report.json ({report.questions} questions)")


async def _run(plan: EvalPlan, runtime: Runtime | None) -> Report:
    from evaluation.progress import RichProgress
    from evaluation.session import run_evaluation
    from serving.cli.common import usage_errors

    model = None
    if runtime is not None:
        with usage_errors():
            model = runtime.model_client()
    try:
        with RichProgress() as progress:
            return await run_evaluation(plan, model, progress.hooks())
    finally:
        if model is not None:
            await model.aclose()
