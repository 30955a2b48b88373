"""`thinkrag ask`: research one question from the terminal, streaming the agent's work.

Reasoning is printed dimmed as it arrives, then each tool call and its hits, then the
answer and a sources table. `--json` prints only the final result object. With
`--profile local` (or another local profile) and no model URL configured, the command
starts the local vLLM server for the duration of the question. The flags are settings
overrides: everything is built by the composition root (`serving.runtime`).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from agent.events import Event, RunFinished
    from serving.runtime import Runtime


def _print_event(console: Any, event: Event, state: dict[str, Any]) -> None:
    from agent.events import ReasoningDelta, ToolCallEvent, ToolResultEvent

    if isinstance(event, ReasoningDelta):
        console.print(event.text, style="dim", end="", markup=False, highlight=False)
        state["mid_line"] = True
        return
    if state.get("mid_line"):
        console.print()
        state["mid_line"] = False
    if isinstance(event, ToolCallEvent):
        console.print(f"→ {event.name} {event.arguments}", style="cyan", markup=False)
    elif isinstance(event, ToolResultEvent):
        if not event.ok:
            console.print(f"  ✗ {event.observation[:200]}", style="red", markup=False)
        for hit in event.hits:
            flag = " (cached)" if event.cached else ""
            console.print(
                f"  [{hit.number}] {hit.title} — {hit.source}{flag}", style="green", markup=False
            )


def _print_result(console: Any, done: RunFinished) -> None:
    from rich.table import Table

    console.print()
    if done.finalized_reason:
        from agent.events import reason_text

        why = reason_text(done.finalized_reason)
        console.print(f"(answered early: {why})", style="yellow", markup=False)
    console.print(done.answer, markup=False, highlight=False)
    if done.sources:
        table = Table(title="Sources", show_lines=False)
        for column in ("#", "title", "source", "cited span"):
            table.add_column(column)
        for s in done.sources:
            span = " ".join(s.text.split())
            table.add_row(str(s.number), s.title, s.source, span[:160])
        console.print(table)
    if done.removed_citations:
        removed = ", ".join(str(n) for n in done.removed_citations)
        console.print(f"removed unknown citations: {removed}", style="yellow")
    u = done.usage
    console.print(
        f"{done.steps} steps, {done.tool_calls} tool calls, "
        f"{u.prompt_tokens}+{u.completion_tokens} tokens, {done.seconds:.1f}s",
        style="dim",
    )


async def _run(question: str, *, runtime: Runtime, thread: str, options: Any, as_json: bool) -> int:
    from rich.console import Console

    from agent.events import RunError, RunFinished

    console = Console(highlight=False)
    parts = runtime.components()
    agent, model = parts.engine, parts.model
    state: dict[str, Any] = {}
    code = 1
    try:
        run_id = uuid.uuid4().hex
        async for event in agent.run(question, thread_id=thread, run_id=run_id, options=options):
            if isinstance(event, RunFinished):
                if as_json:
                    print(event.model_dump_json(indent=2))
                else:
                    _print_result(console, event)
                code = 0
            elif isinstance(event, RunError):
                err = Console(stderr=True)
                err.print(f"error ({event.kind}): {event.message}", style="red", markup=False)
                if as_json:
                    print(event.model_dump_json(indent=2))
            elif not as_json:
                _print_event(console, event, state)
    finally:
        await agent.aclose()
        await model.aclose()
    return code


def ask(
    question: str = typer.Argument(..., help="The question to research."),
    index: Path | None = typer.Option(None, "--index", help="Index directory (thinkrag index)."),
    model: str | None = typer.Option(None, "--model", help="OpenAI-compatible URL ending in /v1."),
    profile: str | None = typer.Option(None, "--profile", help="Model profile, e.g. local."),
    model_name: str | None = typer.Option(None, "--model-name", help="Served model name."),
    thread: str | None = typer.Option(None, "--thread", help="Conversation id for follow-ups."),
    as_json: bool = typer.Option(False, "--json", help="Print only the final result as JSON."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1),
    max_tool_calls: int | None = typer.Option(None, "--max-tool-calls", min=0),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=64, help="Total tokens."),
    deadline: float | None = typer.Option(None, "--deadline", help="Seconds for the run."),
    top_k: int | None = typer.Option(None, "--top-k", min=1),
    protocol: str | None = typer.Option(None, "--protocol", help="tools | json | tags"),
    retrieval_first: bool | None = typer.Option(
        None, "--retrieval-first/--no-retrieval-first", help="Search the question first."
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Checkpoint SQLite file."),
    fetch_url: bool | None = typer.Option(
        None, "--fetch-url/--no-fetch-url", help="Let the agent read public web pages (off)."
    ),
    fetch_allow_host: list[str] | None = typer.Option(
        None, "--fetch-allow-host", help="Host or CIDR fetch_url may reach although private."
    ),
) -> None:
    """Research QUESTION over your index and answer with checked citations."""
    from serving.cli.common import fail, runtime_from_flags, usage_errors

    runtime = runtime_from_flags(
        index_dir=index,
        model_url=model,
        profile=profile,
        model_name=model_name,
        max_steps=max_steps,
        max_tool_calls=max_tool_calls,
        max_total_tokens=max_tokens,
        deadline_seconds=deadline,
        top_k=top_k,
        protocol=protocol,
        retrieval_first=retrieval_first,
        checkpoint_path=checkpoint,
        enable_fetch_url=fetch_url,
        fetch_allow_hosts=fetch_allow_host or None,
    )
    with usage_errors():
        runtime.retriever  # noqa: B018 - the index and its embedder, checked before vLLM starts
    from serving.models.launcher import LaunchError
    from serving.models.local import LocalModelError

    with runtime:
        if runtime.wants_local_model:
            assert runtime.profile is not None
            typer.echo(f"starting local vLLM for profile {runtime.profile.name} ...", err=True)
            try:
                runtime.start_local_model()
            except (LaunchError, LocalModelError) as exc:
                fail(str(exc), code=1)
        with usage_errors():
            runtime.components()  # a bad model URL is a usage error, not a traceback
        code = asyncio.run(
            _run(
                question,
                runtime=runtime,
                thread=thread or uuid.uuid4().hex,
                options=None,
                as_json=as_json,
            )
        )
    if code:
        raise typer.Exit(code)
