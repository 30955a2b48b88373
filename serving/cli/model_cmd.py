"""`thinkrag model ...`: serve a profile with vLLM, list profiles, probe a running server."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("serve")
def serve(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name.")] = "local",
    port: Annotated[int, typer.Option(help="Port (0 = pick a free one).")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for vLLM to answer.")] = 600,
) -> None:
    """Start vLLM for a local profile and keep it running until Ctrl-C.

    Production (GPU) profiles are printed, not run: this machine serves them with vLLM on
    a GPU host, and thinkrag connects to it by URL.
    """
    from serving.cli.common import runtime_from_flags

    runtime = runtime_from_flags(profile=profile)
    chosen = runtime.profile
    assert chosen is not None  # the option always names one
    if not chosen.is_local:
        typer.echo(
            f"{chosen.name} is a GPU profile: run this on a GPU host, then point thinkrag "
            f"at http://<host>:{port}/v1\n"
        )
        typer.echo(chosen.shell_command(port=port, host="0.0.0.0"))
        if chosen.notes:
            typer.echo(f"\nnote: {chosen.notes}")
        return

    from serving.models.launcher import LaunchError, VLLMServer
    from serving.models.local import LocalModelError

    server: VLLMServer = runtime.local_server(port=port or None, host=host)
    stop = threading.Event()
    # Ctrl-C and SIGTERM (systemd, docker stop) both end the wait and stop vLLM cleanly;
    # SIGINT is handled explicitly because shells start background jobs with it ignored.
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        typer.echo(f"starting vLLM for profile {chosen.name} (cold start takes ~20-60 s)...")
        base_url = server.start(timeout=timeout)
        typer.echo(f"serving {chosen.served_model_name} at {base_url}  (log: {server.log_path})")
        typer.echo("press Ctrl-C to stop")
        while not stop.wait(0.5):
            if server.pid is None:
                break
    except KeyboardInterrupt:
        pass
    except (LaunchError, LocalModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        typer.echo("vLLM stopped")


@app.command("profiles")
def profiles(
    port: Annotated[int, typer.Option(help="Port shown in the commands.")] = 8000,
) -> None:
    """List the model profiles with their vLLM flags and agent settings."""
    from rich.console import Console
    from rich.table import Table

    from serving.models.profiles import PROFILES

    table = Table(title="thinkrag model profiles", show_lines=True)
    for column in ("profile", "where", "model", "protocol", "vLLM flags"):
        table.add_column(column, overflow="fold")
    for p in PROFILES.values():
        where = "local CPU" if p.is_local else f"GPU x{p.tensor_parallel_size}"
        sampling = f"{p.protocol}\nT={p.temperature} top_p={p.top_p}"
        if p.thinking_budget:
            sampling += f"\nthinking<={p.thinking_budget}"
        table.add_row(p.name, where, p.model, sampling, " ".join(p.serve_flags()))
    Console().print(table)


@app.command("check")
def check(
    url: Annotated[str, typer.Argument(help="Server base URL ending in /v1.")],
    model: Annotated[str | None, typer.Option(help="Model name (default: first served).")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Bearer key (default: THINKRAG_MODEL_API_KEY).")
    ] = None,
) -> None:
    """Probe a running server: models, reasoning field, tool calls, structured output."""
    from rich.console import Console
    from rich.table import Table

    from serving.cli.common import settings_from_flags, usage_errors
    from serving.models.check import check_server

    settings = settings_from_flags(model_api_key=api_key)
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    with usage_errors():  # e.g. a URL without /v1: one line naming the fix
        report = asyncio.run(check_server(url, model=model, api_key=key))
    table = Table(title=f"model server {url}")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    colors = {"ok": "green", "warn": "yellow", "fail": "red"}
    failed = False
    for row in report.rows:
        failed = failed or row.status == "fail"
        color = colors.get(row.status, "white")
        table.add_row(row.name, f"[{color}]{row.status}[/{color}]", row.detail, row.fix)
    Console().print(table)
    if failed:
        raise typer.Exit(1)
