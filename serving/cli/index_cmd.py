"""`thinkrag index` and `thinkrag search`: build an index from folders, query it.

Retrieval failures are caught here, at the edge, and printed as one red line
(`error: <message>`) with exit code 2; the message already says how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

T = TypeVar("T")
_out = Console()
_err = Console(stderr=True)


def _guarded(action: Callable[[], T]) -> T:
    from retrieval.errors import RetrievalError
    from serving.runtime import StartupError

    try:
        return action()
    except (RetrievalError, StartupError, ValueError) as exc:
        _err.print(f"[red]error: {exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    index_dir: Annotated[Path, typer.Option("--index", help="Index directory to build.")],
    embedder: Annotated[
        str | None, typer.Option(help="Embedder spec (registry name, st:PATH, openai:URL#MODEL).")
    ] = None,
    index_spec: Annotated[
        str | None, typer.Option(help="FAISS factory string; default picks by corpus size.")
    ] = None,
    include: Annotated[list[str] | None, typer.Option(help="Glob of files to include.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of files to exclude.")] = None,
    jsonl_id: Annotated[str, typer.Option(help="JSONL field holding the document id.")] = "id",
    jsonl_title: Annotated[str, typer.Option(help="JSONL field holding the title.")] = "title",
    jsonl_text: Annotated[str, typer.Option(help="JSONL field holding the text.")] = "text",
    batch_size: Annotated[int, typer.Option(help="Passages per embedding batch.")] = 64,
    max_tokens: Annotated[int, typer.Option(help="Passage size budget in tokens.")] = 180,
    overlap: Annotated[int, typer.Option(help="Tokens shared by adjacent passages.")] = 30,
    rebuild: Annotated[bool, typer.Option(help="Re-embed everything (new settings).")] = False,
    ray: Annotated[
        str | None, typer.Option(help="Run chunk+embed on Ray: 'auto' or a cluster address.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Index documents (txt, md, html, jsonl, pdf) into a FAISS + BM25 index."""
    from retrieval.indexing.job import run_index_job
    from retrieval.indexing.job_types import IndexConfig, JobProgress, NoProgress
    from retrieval.indexing.progress import RichProgress
    from serving.cli.common import settings_from_flags

    # The settings say where a built embedder model is cached (THINKRAG_CACHE and friends).
    model_cache = settings_from_flags().cache_root

    def run() -> None:
        config = IndexConfig(
            embedder_spec=embedder,
            index_spec=index_spec,
            include=tuple(include or ()),
            exclude=tuple(exclude or ()),
            jsonl_id=jsonl_id,
            jsonl_title=jsonl_title,
            jsonl_text=jsonl_text,
            batch_size=batch_size,
            max_tokens=max_tokens,
            overlap_tokens=overlap,
            rebuild=rebuild,
            ray_address=ray,
            model_cache=model_cache,
        )
        progress: JobProgress = NoProgress() if as_json else RichProgress(_err)
        report = run_index_job(paths, index_dir, config, progress=progress)
        if as_json:
            typer.echo(report.to_json())
            return
        table = Table(title=f"Indexed into {report.index_dir}", show_header=False)
        rows = [
            (
                "generation",
                f"{report.generation} ({'published' if report.published else 'unchanged'})",
            ),
            ("documents read", str(report.documents_read)),
            (
                "unchanged / added / updated / removed",
                f"{report.unchanged} / {report.added} / {report.updated} / {report.removed}",
            ),
            ("skipped", str(len(report.skipped))),
            ("documents in index", str(report.documents)),
            ("passages in index", str(report.passages)),
            ("passages embedded", str(report.passages_embedded)),
            ("faiss", report.factory),
            ("embedder", report.embedder_id),
            ("model load", f"{report.load_seconds:.1f} s"),
            ("scan + chunk", f"{report.scan_seconds:.1f} s"),
            (
                "embedding",
                f"{report.embed_seconds:.1f} s ({report.embed_passages_per_second:.1f} passages/s)",
            ),
            ("faiss + bm25 + publish", f"{report.publish_seconds:.1f} s"),
            ("time", f"{report.seconds:.1f} s ({report.passages_per_second:.1f} passages/s)"),
        ]
        for key, value in rows:
            table.add_row(key, value)
        _out.print(table)
        for item in report.skipped:
            # names and reasons are data, not rich markup ("notes[draft].txt" must print)
            _out.print(
                f"[yellow]skipped[/yellow] {escape(item.source)}: {escape(item.reason)}",
                highlight=False,
            )

    _guarded(run)


def search(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    index_dir: Annotated[Path, typer.Option("--index", help="Index directory.")],
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    embedder: Annotated[
        str | None, typer.Option(help="Query embedder spec; default: the index's own.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Search an index and print the best passages."""
    from serving.runtime import build_runtime
    from serving.settings import load_settings

    if mode not in ("hybrid", "dense", "bm25"):
        _err.print(f"[red]error: --mode must be hybrid, dense or bm25, not {mode!r}[/red]")
        raise typer.Exit(2)
    chosen: Literal["hybrid", "dense", "bm25"] = mode  # type: ignore[assignment]

    def run() -> None:
        settings = load_settings(index_dir=index_dir, retriever_mode=chosen, embedder=embedder)
        # `--index` is what to search, even where THINKRAG_MEMORY_PASSAGES is set.
        settings = settings.model_copy(update={"memory_passages": None})
        hits = build_runtime(settings).retriever.search(query, k=k)
        if as_json:
            typer.echo(json.dumps([asdict(h) for h in hits], ensure_ascii=False, indent=2))
            return
        table = Table(title=f"{mode} search: {query}")
        for column in ("rank", "score", "title", "source", "snippet"):
            table.add_column(column, overflow="fold")
        for rank, hit in enumerate(hits, 1):
            snippet = " ".join(hit.text.split())
            snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
            table.add_row(str(rank), f"{hit.score:.4f}", hit.title, hit.source, snippet)
        _out.print(table)
        if not hits:
            _out.print("no results")

    _guarded(run)
