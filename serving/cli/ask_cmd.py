"""`thinkrag ask`: research one question from the terminal, streaming the agent's work.

Reasoning is printed dimmed as it arrives, then each tool call and its hits, then the
answer and a sources table. `--json` prints only the final result object. With
`--profile local` (or another local profile) and no `--model`, the command starts the
local vLLM server for the duration of the question.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.events import Event, RunFinished


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
        console.print(f"(finalized early: {done.finalized_reason})", style="yellow")
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


async def _run(
    question: str,
    *,
    base_url: str,
    model_name: str | None,
    retriever: Any,
    config: AgentConfig,
    checkpoint: Path,
    thread: str,
    options: Any,
    as_json: bool,
) -> int:
    from rich.console import Console

    from agent.events import RunError, RunFinished
    from agent.llm.client import OpenAIClient
    from agent.runner import ResearchAgent

    console = Console(highlight=False)
    model = OpenAIClient(base_url, model_name)
    agent = ResearchAgent(model, retriever, config, checkpoint_path=checkpoint)
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
) -> None:
    """Research QUESTION over your index and answer with checked citations."""
    from serving.settings import load_settings

    settings = load_settings()
    prof = None
    if profile or settings.profile:
        from serving.models.profiles import get_profile

        try:
            prof = get_profile(profile or settings.profile or "")
        except KeyError as exc:
            raise typer.BadParameter(str(exc), param_hint="--profile") from exc
    index_dir = index or settings.index_dir
    if index_dir is None:
        raise typer.BadParameter(
            "no index given: pass --index DIR (build one with `thinkrag index PATH --out DIR`) "
            "or set THINKRAG_INDEX_DIR",
            param_hint="--index",
        )
    from retrieval.search.retriever import load_retriever

    retriever = load_retriever(index_dir, mode=settings.retriever_mode)
    from serving.models.agent_config import agent_config_for

    config = agent_config_for(
        prof,
        protocol=protocol,
        retrieval_first=retrieval_first,
        max_steps=max_steps,
        max_tool_calls=max_tool_calls,
        max_total_tokens=max_tokens,
        deadline_seconds=deadline,
        top_k=top_k,
    )
    name = model_name or (prof.served_model_name if prof is not None else settings.model_name)
    server = None
    base_url = model or settings.model_url
    if model is None and prof is not None and prof.is_local:
        from serving.models.launcher import VLLMServer

        typer.echo(f"starting local vLLM for profile {prof.name} ...", err=True)
        server = VLLMServer(prof)
        base_url = server.start()
    try:
        code = asyncio.run(
            _run(
                question,
                base_url=base_url,
                model_name=name,
                retriever=retriever,
                config=config,
                checkpoint=checkpoint or settings.resolved_checkpoint_path,
                thread=thread or uuid.uuid4().hex,
                options=None,
                as_json=as_json,
            )
        )
    finally:
        if server is not None:
            server.stop()
    if code:
        raise typer.Exit(code)
