"""What every command shares: settings from flags, the runtime, and one-line usage errors.

A CLI mistake (a bad flag value, a missing index, a model URL without `/v1`, an unknown
profile) prints `error: <message>` on stderr and exits 2; the message already names the
fix. Tracebacks are for our own bugs only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from serving.runtime import Runtime
    from serving.settings import Settings

USAGE_EXIT = 2


def fail(message: str, code: int = USAGE_EXIT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn the typed errors a wrong invocation raises into one line and exit 2."""
    from retrieval.errors import RetrievalError
    from serving.runtime import StartupError

    try:
        yield
    except (StartupError, RetrievalError, ValueError) as exc:  # SettingsError is a ValueError
        fail(str(exc))


def settings_from_flags(config: Path | None = None, **flags: Any) -> Settings:
    """Settings with the command's flags as overrides (a flag left out is None)."""
    from serving.settings import load_settings

    with usage_errors():
        return load_settings(config, **flags)


def runtime_from_flags(config: Path | None = None, **flags: Any) -> Runtime:
    """The composition root for a command: its flags over the environment and the file."""
    from serving.runtime import build_runtime

    settings = settings_from_flags(config, **flags)
    with usage_errors():
        return build_runtime(settings)
