"""How many CPU threads torch uses (training, the torch engine, exports)."""

from __future__ import annotations

import os

__all__ = ["set_threads"]


def set_threads(threads: int | None) -> int:
    """Use ``threads`` torch threads (default: every core); return how many."""
    import torch  # the train extra

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
