"""``jarvis setup-jac``: make ``jac run`` work on Python 3.11 in this environment, offline."""

from __future__ import annotations

import sys

import typer

from jarvis.cli.common import handle_errors, out
from jarvis.core.extras import require_extra
from jarvis.integrations import jac_compat


def register(app: typer.Typer) -> None:
    app.command("setup-jac")(handle_errors(setup_jac_cmd))


def setup_jac_cmd() -> None:
    """Write the .pth file that lets jaclang 0.10 (Python 3.11) load offline (once per venv),
    then run one tiny program so jaclang compiles its own modules now, not in your first run.

    The .pth is not needed on Python 3.12+ or for `@by(llm)` functions called from Python; see
    the README.
    """
    require_extra("jac", "running .jac programs")
    path = jac_compat.install()
    out.print(f"wrote {path} (Python {sys.version_info.major}.{sys.version_info.minor})")
    jac_compat.warm_up()
    out.print("jac run works here (jaclang compiled and cached its modules)")
