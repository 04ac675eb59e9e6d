"""The Typer application: global options, and the command groups (one module each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from jarvis.cli import bench, calls, data, demo, models, serve, setup, status
from jarvis.cli.common import fit_width

app = typer.Typer(
    name="jarvis",
    help=(
        "JARVIS: typed LLM calls that teach a small local model to replace the big one.\n\n"
        "Everything lives in JARVIS_HOME (default ~/.jarvis): the database, models and logs."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="JARVIS_HOME for this command.", envvar=None)
    ] = None,
    task_module: Annotated[
        list[str] | None,
        typer.Option("--app", "-a", help="Extra Python module defining tasks (repeatable)."),
    ] = None,
) -> None:
    fit_width()
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    ctx.obj = {"overrides": overrides, "modules": list(task_module or [])}


for _group in (status, calls, data, models, demo, serve, setup):
    _group.register(app)
app.add_typer(bench.bench_app, name="bench")


def main() -> None:
    app()
