"""Training benchmark; same as ``jarvis bench training``. Run: python benchmarks/training.py
[--task level|map] [--examples 300] … (see ``jarvis bench training --help``)."""

import sys

from jarvis.cli.app import app

if __name__ == "__main__":
    app(["bench", "training", *sys.argv[1:]])
