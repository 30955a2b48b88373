"""`thinkrag mcp`: serve the index and the research agent as an MCP server over stdio,
or (`--list-tools CONFIG`) check the MCP servers a settings file gives the agent.

Over stdio, stdout carries the protocol: everything else (logs, a local vLLM's output)
goes to stderr. The index is opened before the first message, so a wrong path fails at
once with one line instead of inside the client.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from serving.http.research import ResearchEngine
    from serving.runtime import Components


def mcp(
    index: Annotated[Path | None, typer.Option("--index", help="Index directory.")] = None,
    profile: Annotated[str | None, typer.Option(help="Model profile name.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model server URL ending in /v1 (research).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    list_tools: Annotated[
        Path | None,
        typer.Option(
            "--list-tools",
            help="Start the MCP servers this TOML file configures, list their tools, exit.",
        ),
    ] = None,
) -> None:
    """Serve search, open_passage and research to MCP clients over stdio."""
    if list_tools is not None:
        raise typer.Exit(_list_tools(list_tools))
    import anyio

    from serving.cli.common import runtime_from_flags, usage_errors
    from serving.mcp.research import EngineRuns
    from serving.mcp.server import Backend, build_mcp_server

    runtime = runtime_from_flags(config, index_dir=index, profile=profile, model_url=model)
    with usage_errors():
        runtime.retriever  # noqa: B018 - a missing or broken index fails here, in one line
    if runtime.wants_local_model:
        runtime.start_local_model()
    built: list[Components] = []  # the agent is built on the first research call

    def engine() -> ResearchEngine:
        if not built:
            built.append(runtime.components())
        return built[0].engine

    backend = Backend(retriever=lambda: runtime.retriever, runs=lambda: EngineRuns(engine()))
    server = build_mcp_server(backend)  # stdio: one client, so runs go straight to the engine

    async def main() -> None:
        try:
            await server.run_stdio_async()
        finally:
            for parts in built:
                await parts.engine.aclose()
                await parts.model.aclose()

    with runtime:
        anyio.run(main)


def _list_tools(config: Path) -> int:
    """Print `name: description` per offered tool and one line per problem; 1 on problems."""
    from agent.mcp.hub import McpHub
    from agent.mcp.tool import make_tools
    from serving.cli.common import settings_from_flags

    settings = settings_from_flags(config)
    if not settings.mcp_servers:
        typer.echo(f"error: {config} lists no [[mcp_servers]]", err=True)
        return 2
    with McpHub(settings.mcp_servers) as hub:
        for tool in make_tools(hub):
            typer.echo(f"{tool.name}: {tool.description}")
        for warning in hub.warnings:
            typer.echo(f"warning: {warning}", err=True)
        return 1 if hub.warnings else 0
