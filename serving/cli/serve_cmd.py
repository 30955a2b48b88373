"""`thinkrag serve`: run the research service under uvicorn.

Checks the index and the model server before binding the port, so a misconfigured
server fails in a second with a message, not on the first request.
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
) -> None:
    """Serve the OpenAI-compatible, LangGraph-compatible and native HTTP APIs."""
    import uvicorn

    from serving.http.app import create_app
    from serving.runtime import StartupError, build_retriever, check_model
    from serving.settings import SettingsError, load_settings

    try:
        settings = load_settings(
            config, host=host, port=port, index_dir=index, profile=profile, model_url=model
        )
        settings.check_exposure()
        build_retriever(settings)  # fails fast on a missing or broken index
    except (SettingsError, StartupError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not skip_model_check:
        problem = asyncio.run(check_model(settings))
        if problem:
            typer.echo(
                f"error: {problem}; start it (e.g. `thinkrag model serve`) or pass the right "
                "--model URL (or --skip-model-check to start anyway)",
                err=True,
            )
            raise typer.Exit(2)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False)
