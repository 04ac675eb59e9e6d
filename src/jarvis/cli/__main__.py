"""``python -m jarvis.cli``: the same as the ``jarvis`` command."""

from jarvis.cli import main

main()
