"""The `thinkrag` command line. Each command group lives in its own module.

Commands import their heavy dependencies (faiss, torch, vLLM) inside the command body so
`thinkrag --help` stays instant.
"""

from __future__ import annotations

import typer

from serving.cli import ask_cmd, eval_cmd, index_cmd, mcp_cmd, model_cmd, serve_cmd

app = typer.Typer(
    name="thinkrag",
    help="Research your own documents with an open reasoning model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("index")(index_cmd.index)
app.command("search")(index_cmd.search)
app.add_typer(model_cmd.app, name="model", help="Serve and check vLLM model servers.")
app.command("ask")(ask_cmd.ask)
app.command("serve")(serve_cmd.serve)
app.command("eval")(eval_cmd.evaluate)
app.command("mcp")(mcp_cmd.mcp)


def main() -> None:
    app()
