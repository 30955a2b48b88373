"""`python -m serving ...` is `thinkrag serve ...` (handy for subprocess launches)."""

import typer

from serving.cli.serve_cmd import serve

typer.run(serve)
