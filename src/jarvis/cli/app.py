"""The Typer application: global options, error handling, and the command groups."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from jarvis.config import Settings
from jarvis.errors import JarvisError
from jarvis.runtime import Jarvis

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

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 120  # piped output (logs, CI) gets readable tables instead of 80 columns

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Print a JARVIS error as one clear line (no traceback) and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except JarvisError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


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
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    ctx.obj = {"overrides": overrides, "modules": list(task_module or [])}


def runtime(ctx: typer.Context) -> Jarvis:
    """Build the runtime once per command, from the environment plus the global options."""
    obj = ctx.find_root().obj or {}
    if "runtime" not in obj:
        settings = Settings(**obj.get("overrides", {}))
        if obj.get("modules"):
            settings.task_modules = [*settings.task_modules, *obj["modules"]]
        obj["runtime"] = Jarvis(settings)
        ctx.call_on_close(obj["runtime"].close)
    rt: Jarvis = obj["runtime"]
    return rt


def parse_json_option(value: str, what: str) -> Any:
    """Parse a ``--input``/``--output`` JSON value; ``@file`` reads it from a file."""
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise JarvisError(f"{what}: cannot read {value[1:]}: {exc.strerror}") from exc
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise JarvisError(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}") from exc


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _register() -> None:
    from jarvis.cli import bench, calls, data, demo, models, serve, status

    for module in (status, calls, data, models, demo, serve):
        module.register(app)
    app.add_typer(bench.bench_app, name="bench")


_register()


def main() -> None:
    app()
