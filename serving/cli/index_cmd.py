"""Placeholder until its owner lands it."""

import typer



def index() -> None:
    raise typer.Exit(2)


def search() -> None:
    raise typer.Exit(2)
