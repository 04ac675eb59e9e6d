"""What every command shares: the consoles, one-line errors, the runtime of the command,
JSON in and out."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from jarvis.core.errors import JarvisError
from jarvis.runtime import Jarvis, Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fit_width() -> None:
    """Tables as wide as ``COLUMNS`` says, else the terminal, else 120 columns for piped output
    (logs, CI) instead of rich's 80. Run per command, not at import: a program (or a test)
    may run several commands in one process with different ``COLUMNS``."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        out.width = int(columns)
    elif not out.is_terminal:
        out.width = 120


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
