"""Make ``jac run`` work on Python 3.11, offline, by a ``.pth`` line run at interpreter start.

jaclang 0.10.2 (the newest pip gives Python 3.11) imports ``typing.override``, which is new in
3.12: ``typing_extensions`` has it. byLLM imports litellm, which fetches a price list from the
internet at import time unless ``LITELLM_LOCAL_MODEL_COST_MAP`` is set first. A ``.pth`` file
in site-packages is the one place that runs before both; ``jarvis setup-jac`` (or ``python -m
jarvis.integrations.jac_compat``; ``scripts/setup.sh`` runs it) writes it. A wheel cannot
install it for an extra only, and a ``.pth`` runs in every interpreter of the environment, so
it is written on request rather than by every install.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

__all__ = ["PTH_NAME", "install"]

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


if __name__ == "__main__":
    print(f"wrote {install()}", file=sys.stderr)
