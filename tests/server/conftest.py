"""A real server on a free port, in a thread, around a real runtime.

The runtime uses the procedural teacher and, as its student, the real serving engine (torch
backend) on the tiny test base; ``make_version`` (tests/conftest.py) publishes versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jarvis import Jarvis, Settings
from live_server import LiveServer


@pytest.fixture
def served_settings(home: Path, tiny_base: Path) -> Settings:
    return Settings(
        home=home,
        teacher_seed=7,
        base_model=str(tiny_base),
        engine="torch",
        student_retries=0,
        max_tokens=256,
    )


@pytest.fixture
def live(served_settings: Settings) -> Iterator[LiveServer]:
    rt = Jarvis(served_settings)
    rt.sync_tasks()
    with LiveServer(rt) as server:
        yield server
    rt.close()
