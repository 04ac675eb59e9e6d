"""Make ``jac run`` work on Python 3.11, offline, by a ``.pth`` line run at interpreter start.

jaclang 0.10.2 (the newest pip gives Python 3.11) imports ``typing.override``, which is new in
3.12: ``typing_extensions`` has it. byLLM imports litellm, which fetches a price list from the
internet at import time unless ``LITELLM_LOCAL_MODEL_COST_MAP`` is set first. A ``.pth`` file
in site-packages is the one place that runs before both; ``jarvis setup-jac`` (or ``python -m
jarvis.integrations.jac_compat``; ``scripts/setup.sh`` runs it) writes it. A wheel cannot
install it for an extra only, and a ``.pth`` runs in every interpreter of the environment, so
it is written on request rather than by every install.

jaclang also compiles its own ``.jac`` modules on first use, printing a line for each into the
output of whatever program runs first; :func:`warm_up` runs one tiny program so that happens
at set-up, not in a user's (or a test's) first run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from jarvis.core.errors import JarvisError

__all__ = ["PTH_NAME", "install", "warm_up"]

PTH_NAME = "jarvis_jac_compat.pth"
# site.py executes .pth lines that start with "import"; each must stay one line.
LINES = (
    "import typing, typing_extensions; typing.override = getattr(typing, 'override', "
    "typing_extensions.override)",
    "import os; os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')",
)


def install(site_dir: Path | None = None) -> Path:
    """Write the ``.pth`` file into ``site_dir`` (default: this interpreter's site-packages)."""
    target = Path(site_dir or sysconfig.get_paths()["purelib"]) / PTH_NAME
    target.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return target


def warm_up(timeout: float = 600) -> None:
    """Run a one-line ``.jac`` program with this environment's ``jac``: jaclang compiles and
    caches the modules it needs (after :func:`install`, so the ``.pth`` is in place)."""
    local = Path(sys.executable).parent / "jac"
    jac = str(local) if local.is_file() else shutil.which("jac")
    if jac is None:
        raise JarvisError("no `jac` command in this environment (the jac extra installs it)")
    with tempfile.TemporaryDirectory(prefix="jarvis-jac-") as tmp:
        program = Path(tmp) / "hello.jac"
        program.write_text('with entry {\n    print("ready");\n}\n', encoding="utf-8")
        done = subprocess.run(
            [jac, "run", str(program)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp,
            check=False,
        )
    if done.returncode != 0 or "ready" not in done.stdout:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise JarvisError(f"`jac run` failed after set-up: {' / '.join(tail)}")


if __name__ == "__main__":
    print(f"wrote {install()}", file=sys.stderr)
    warm_up()
