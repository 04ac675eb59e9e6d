"""The hand-written grammar that llguidance replaced, loaded from git for side-by-side runs.

Its three modules (``serving/grammar.py``, ``guide.py``, ``decode.py`` at ``BASELINE``) are
written to a temporary folder as ``old_grammar``, ``old_guide`` and ``old_decode``, with their
imports of each other renamed, so they load next to the current package.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASELINE = "f4fb209"  # the last commit with the hand-written grammar

Baseline = tuple[ModuleType, ModuleType, ModuleType]


def load_baseline(rev: str = BASELINE) -> tuple[ModuleType, ModuleType, ModuleType]:
    """The old grammar, guide and decode modules at ``rev``, importable side by side."""
    folder = Path(tempfile.mkdtemp(prefix="grammar-baseline-"))
    for name in ("grammar", "guide", "decode"):
        source = subprocess.run(
            ["git", "show", f"{rev}:src/jarvis/serving/{name}.py"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = source.replace(
            "from jarvis.serving import grammar as g", "import old_grammar as g"
        )
        source = source.replace("jarvis.serving.grammar", "old_grammar")
        source = source.replace("jarvis.serving.guide", "old_guide")
        (folder / f"old_{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    grammar, guide, decode = (
        importlib.import_module(f"old_{m}") for m in ("grammar", "guide", "decode")
    )
    return grammar, guide, decode


class TupleRows:
    """The engine's model as the old decode loop calls it (rows as a tuple of ids)."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm

    def begin(self) -> None:
        self.lm.begin()

    def scores(self, tokens: Any, rows: Any) -> np.ndarray:
        return self.lm.scores(tokens, None if rows is None else np.asarray(rows))  # type: ignore[no-any-return]
