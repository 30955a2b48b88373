"""`thinkrag serve`: run the research service under uvicorn.

Checks the index and the model server before binding the port, so a misconfigured
server fails in a second with a message, not on the first request. The app then serves
the very runtime that was checked: the index and its embedder are loaded once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080; 0 picks one).")] = None,
    index: Annotated[Path | None, typer.Option("--index", help="Index directory.")] = None,
    profile: Annotated[str | None, typer.Option(help="Model profile name.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model server URL ending in /v1.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    skip_model_check: Annotated[
        bool, typer.Option(help="Start even if the model server is not reachable yet.")
    ] = False,
    fetch_url: Annotated[
        bool | None,
        typer.Option(
            "--fetch-url/--no-fetch-url", help="Let the agent read public web pages (off)."
        ),
    ] = None,
    fetch_allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Host or CIDR fetch_url may reach although private (repeatable)."),
    ] = None,
) -> None:
    """Serve the OpenAI-compatible, LangGraph-compatible and native HTTP APIs."""
    import uvicorn

    from serving.cli.common import runtime_from_flags, usage_errors
    from serving.http.app import create_app
    from serving.runtime import check_model

    runtime = runtime_from_flags(
        config,
        host=host,
        port=port,
        index_dir=index,
        profile=profile,
        model_url=model,
        enable_fetch_url=fetch_url,
        fetch_allow_hosts=fetch_allow_host or None,
    )
    settings = runtime.settings
    with usage_errors():
        settings.check_exposure()
        runtime.components()  # fails fast on a missing or broken index or a bad model URL
    if not skip_model_check:
        problem = asyncio.run(check_model(settings))
        if problem:
            typer.echo(
                f"error: {problem}; start it (e.g. `thinkrag model serve`) or pass the right "
                "--model URL (or --skip-model-check to start anyway)",
                err=True,
            )
            raise typer.Exit(2)
    app = create_app(settings, components=runtime.components)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False)
