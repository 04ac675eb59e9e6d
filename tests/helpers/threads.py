"""How many CPU threads a test's model may use: this worker's share of the cores.

The suite runs on pytest-xdist workers, one per core. A worker whose model started a thread per
core would share every core with the other worker's threads: torch and llama.cpp wait for their
threads by spinning (OpenMP), so two such workers on two cores spend much of their time
spinning against each other. One thread each keeps every core busy with real work.
"""

from __future__ import annotations

import os

__all__ = ["THREADS", "limit_threads"]

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, (os.cpu_count() or 1) // WORKERS)


def limit_threads() -> None:
    """Set this worker's share before torch or llama.cpp start their thread pools (OpenMP
    reads ``OMP_NUM_THREADS`` once), for this process and the ones its tests start."""
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    os.environ.setdefault("JARVIS_TRAIN_THREADS", str(THREADS))
