"""The student learns a task: from an empty home to an active version, measured.

1. Teacher phase: calls go through the router (the procedural teacher answers) until the task
   has ``examples`` training examples; the threshold is set to that number.
2. The worker trains, gates and promotes, exactly as in production (a subprocess job).
   Measured: wall time from the threshold being reached to the version being active, training
   examples/s and seconds/step, the job's peak memory, the gate table.
3. Student phase: calls for difficulties 1..20 (levels) or levels of difficulties 1..20 (maps)
   go through the router again; measured: the share answered by the student without fallback.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jarvis.core.tasks import Task
from jarvis.rpg.models import Level
from jarvis.rpg.oracle import oracle_level
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.runtime import Jarvis, Settings

TASKS: dict[str, Task[Any]] = {"level": create_next_level, "map": create_next_map}


def level_inputs(rng: random.Random) -> dict[str, Any]:
    """A call as the game makes it, at a random point of a random game.

    Level ``n`` of a game has difficulty ceil(n/2) (it rises every second level) and is asked
    for with the (up to) three levels before it; only the very first level comes with none.
    Games are varied: they start at different level numbers (saved games), and a previous
    level may lag a difficulty behind.
    """
    n = rng.randint(1, 40)
    offset = rng.randint(0, 30)
    previous: list[Level] = []
    for m in range(max(1, n - 3), n):
        level = oracle_level(previous, max(1, (m + 1) // 2 - rng.randint(0, 1)), rng)
        previous.append(level.model_copy(update={"name": m + offset}))
    return {"last_levels": previous, "difficulty": (n + 1) // 2}


def map_inputs(rng: random.Random, difficulty: int | None = None) -> dict[str, Any]:
    d = difficulty or rng.randint(1, 20)
    return {"level": oracle_level([], d, rng).model_copy(update={"name": rng.randint(1, 40)})}


@dataclass
class TrainingFigures:
    task: str
    examples: int
    teacher_phase_s: float
    threshold_to_active_s: float | None
    run_status: str
    version: str | None
    promoted: bool
    card: dict[str, Any] = field(default_factory=dict)
    student_calls: int = 0
    student_without_fallback: int = 0
    student_phase_s: float = 0.0
    error: str | None = None


def run(
    task_key: str = "level",
    examples: int = 300,
    home: Path | None = None,
    seed: int = 0,
    probes: int = 20,
    settings_overrides: dict[str, Any] | None = None,
    say: Any = print,
) -> TrainingFigures:
    task = TASKS[task_key]
    owned = home is None
    workdir = Path(tempfile.mkdtemp(prefix="jarvis-bench-")) if owned else home
    assert workdir is not None
    settings = Settings(
        home=workdir, teacher_seed=seed, threshold=examples, **(settings_overrides or {})
    )
    rt = Jarvis(settings)
    rng = random.Random(seed)
    make = level_inputs if task is create_next_level else map_inputs

    started = time.perf_counter()
    calls = 0
    while rt.store.example_count(task.name, "train") < examples:
        rt.call(task, make(rng))
        calls += 1
        if calls > 20 * examples:  # the inputs repeat: more calls would add no examples
            raise RuntimeError(f"{calls} calls gave fewer than {examples} distinct examples")
    teacher_s = time.perf_counter() - started
    say(f"teacher phase: {examples} training examples of {task.name} in {teacher_s:.1f} s")

    threshold_reached = time.perf_counter()
    worker = rt.worker()
    outcome = worker.step()
    active_at = time.perf_counter()
    if outcome is None:
        return TrainingFigures(task.name, examples, teacher_s, None, "not started", None, False)
    active = rt.store.versions.active(task.name)
    version = outcome.version
    card: dict[str, Any] = {}
    if version is not None:
        row = rt.store.versions.get(task.name, version)
        card = row["card"] if row else {}
    figures = TrainingFigures(
        task=task.name,
        examples=examples,
        teacher_phase_s=teacher_s,
        threshold_to_active_s=(active_at - threshold_reached) if active == version else None,
        run_status=outcome.status,
        version=version,
        promoted=active == version and version is not None,
        card=card,
        error=outcome.error,
    )
    say(f"run {outcome.run_id}: {outcome.status} {version or ''} {outcome.error or ''}")
    if not figures.promoted:
        return figures

    time.sleep(1.1)  # the router's student re-reads the active version every second
    t0 = time.perf_counter()
    previous: list[Level] = []
    for i in range(probes):
        if task is create_next_level:
            # a game from its first level: difficulty ceil(n/2), the last three levels given
            inputs = {"last_levels": previous[-3:], "difficulty": i // 2 + 1}
        else:
            inputs = map_inputs(rng, 1 + i % 20)
        result = rt.call(task, inputs, raise_on_invalid=False)
        if task is create_next_level and result.valid:
            previous.append(result.output)
        figures.student_calls += 1
        figures.student_without_fallback += int(result.source == "student" and result.valid)
    figures.student_phase_s = time.perf_counter() - t0
    rt.close()
    return figures
