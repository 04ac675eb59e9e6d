"""The ``jarvis`` command line. One module per command group; this one wires them up."""

from __future__ import annotations

from jarvis.cli.app import app, main

__all__ = ["app", "main"]
