"""`thinkrag serve`: run the research service under uvicorn.

Checks the index and the model server before binding the port, so a misconfigured
server fails in a second with a message, not on the first request. The app then serves
the very runtime that was checked: the index and its embedder are loaded once.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import uvicorn

    from serving.settings import Settings


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
    database_url: Annotated[
        str | None,
        typer.Option(
            help="postgresql://... : keep runs, events and checkpoints in Postgres, shared "
            "by every replica started with the same URL (default: a SQLite file)."
        ),
    ] = None,
) -> None:
    """Serve the OpenAI-compatible, LangGraph-compatible and native HTTP APIs, and the
    research console at `/`."""
    from serving.cli.common import runtime_from_flags, usage_errors
    from serving.http.app import create_app
    from serving.runtime import check_model, check_store

    runtime = runtime_from_flags(
        config,
        host=host,
        port=port,
        index_dir=index,
        profile=profile,
        model_url=model,
        enable_fetch_url=fetch_url,
        fetch_allow_hosts=fetch_allow_host or None,
        database_url=database_url,
    )
    settings = runtime.settings
    with usage_errors():
        settings.check_exposure()
        runtime.components()  # fails fast on a missing or broken index or a bad model URL
        check_store(settings)
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
    announcing_server(server_config(app, settings)).run()


def server_config(app: Any, settings: Settings, *, log_level: str = "info") -> uvicorn.Config:
    """uvicorn's configuration for the service (also used by the tests' servers).

    X-Forwarded-For is honoured only from `trusted_proxies` (uvicorn trusts 127.0.0.1 by
    default, which would let any local caller pick its own rate-limit identity). Slow
    clients get `client_timeout_seconds` for their headers and for idling between requests.
    """
    import uvicorn

    from serving.http.slow_clients import header_timeout_protocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        http=header_timeout_protocol(settings.client_timeout_seconds),
        timeout_keep_alive=max(1, min(5, round(settings.client_timeout_seconds))),
    )


def announcing_server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's server, printing the console's address once it accepts connections
    (the bound port, so `--port 0` prints the one the OS picked)."""
    import uvicorn

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                port = next(
                    (int(s.getsockname()[1]) for srv in self.servers for s in srv.sockets),
                    self.config.port,
                )
                typer.echo(f"Research console: {console_url(self.config.host, port)}")

    return Announcing(config)


def console_url(host: str, port: int) -> str:
    """The address a browser on this machine opens: a wildcard bind is reached on loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"
