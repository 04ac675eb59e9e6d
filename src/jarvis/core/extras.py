"""JARVIS's optional parts (pip extras), and the one-line error when one is missing.

A core install (``pip install jarvis-mtllm``) runs every command that needs no model: the
store, imports and exports, the server and dashboard with a teacher. Whatever needs a model
checks for its extra first, so the user reads which one to install instead of a traceback.

    extra      gives
    train      torch, transformers, peft: training, the student's base model, the torch engine
    serve      llama-cpp-python: the fast student engine (continuous batching)
    jac        jaclang and byLLM: ``by llm()`` programs through JARVIS
    postgres   psycopg: the store on PostgreSQL
    all        everything above (what the demo uses)
"""

from __future__ import annotations

import importlib.util

from jarvis.core.errors import MissingExtra

__all__ = ["EXTRA_MODULES", "has_extra", "require_extra"]

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "train": ("torch", "transformers", "peft", "safetensors", "gguf"),
    "serve": ("llama_cpp",),
    "jac": ("jaclang", "byllm"),
    "postgres": ("psycopg",),
}


def has_extra(extra: str) -> bool:
    """Whether every module of ``extra`` is importable (found without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in EXTRA_MODULES[extra])


def require_extra(extra: str, needed_for: str) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` when it is not installed."""
    if not has_extra(extra):
        raise MissingExtra(needed_for, extra)
