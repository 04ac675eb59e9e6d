"""Does the student say what the teacher says? Measured like a user would, from an empty home.

1. Teacher phase and training exactly as :mod:`jarvis.benchmarks.training` (the procedural
   teacher, ``examples`` training examples, the defaults unless overridden).
2. Three samples of calls, each asked twice on the same trained version, with **validity-only
   routing** (``cascade`` off: every valid student answer is served, as before) and with the
   **cascade** (answers below the version's calibrated confidence go to the teacher):

   * ``game``: calls made like the game makes them, new games included (a new game asks
     level 1 with no previous level);
   * ``unseen``: game-like calls whose input the teacher never answered;
   * ``cold starts``: new games at difficulties 1..``cold_starts`` (default 20;
     ``last_levels=[]``).

   For each: the student's share, the agreement of the answers the student served with the
   teacher's answer to the same call (the task's own comparison; maps: playable), agreement of
   every served answer, teacher calls saved, p50 latency. And the one call every player sees
   first: a new game's level 1 (difficulty 1, no previous level), served by the student and
   right, or not.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jarvis.benchmarks import training
from jarvis.core.agreement import compare_answers
from jarvis.core.split import content_hash
from jarvis.core.tasks import Task
from jarvis.runtime import Jarvis, Settings

__all__ = ["ModeFigures", "QualityFigures", "run"]

NEW_GAME = {"last_levels": [], "difficulty": 1}


@dataclass
class ModeFigures:
    """One sample asked in one routing mode."""

    calls: int = 0
    student: int = 0  # answered by the student
    student_agree: int = 0  # … and agreeing with the teacher
    agree: int = 0  # every served answer that agrees (the teacher's agree by definition)
    escalated: int = 0
    fallbacks: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "student_share": _share(self.student, self.calls),
            "student_agreement": _share(self.student_agree, self.student),
            "served_agreement": _share(self.agree, self.calls),
            "teacher_calls_saved": self.student,
            "escalated": self.escalated,
            "fallbacks": self.fallbacks,
            "latency_p50_ms": round(statistics.median(self.latencies_ms), 1)
            if self.latencies_ms
            else None,
        }


@dataclass
class QualityFigures:
    task: str
    training: dict[str, Any]
    samples: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    new_game_level_1: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "settings": self.settings,
            "training": self.training,
            "samples": self.samples,
            "new_game_level_1": self.new_game_level_1,
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def game_inputs(rng: random.Random) -> dict[str, Any]:
    """A level call as the game makes it: one in five starts a new game."""
    return dict(NEW_GAME) if rng.random() < 0.2 else training.level_inputs(rng)


def _samples(
    task: Task[Any], rt: Jarvis, rng: random.Random, n: int, cold_starts: int
) -> dict[str, list[dict[str, Any]]]:
    seen = {content_hash(e["input"]) for e in rt.store.iter_examples(task.name)}
    if task.name == "create_next_map":
        game = [training.map_inputs(rng) for _ in range(n)]
        cold = [training.map_inputs(rng, d) for d in range(1, cold_starts + 1)]
        make: Callable[[random.Random], dict[str, Any]] = training.map_inputs
    else:
        game = [game_inputs(rng) for _ in range(n)]
        cold = [{"last_levels": [], "difficulty": d} for d in range(1, cold_starts + 1)]
        make = training.level_inputs
    unseen: list[dict[str, Any]] = []
    for _ in range(100 * n):
        if len(unseen) >= n // 2:
            break
        inputs = make(rng)
        if content_hash(task.dump_inputs(task.load_inputs(inputs))) not in seen:
            unseen.append(inputs)
    return {"game": game, "unseen": unseen, "cold starts": cold}


def _ask(rt: Jarvis, task: Task[Any], calls: list[dict[str, Any]]) -> ModeFigures:
    figures = ModeFigures()
    for inputs in calls:
        result = rt.call(task, inputs, raise_on_invalid=False)
        reference = rt.teacher_answer(task, inputs)
        same = compare_answers(
            task, result.output_json, reference, inputs, valid=result.valid
        ).agrees
        by_student = result.source == "student"
        figures.calls += 1
        figures.student += by_student
        figures.student_agree += by_student and same
        figures.agree += same
        figures.escalated += result.escalated
        figures.fallbacks += result.fallback
        figures.latencies_ms.append(result.latency_ms)
    return figures


def run(
    task_key: str = "level",
    examples: int = 300,
    sample: int = 100,
    home: Path | None = None,
    cold_starts: int = 20,
    seed: int = 0,
    settings_overrides: dict[str, Any] | None = None,
    say: Any = print,
) -> QualityFigures:
    """Train from an empty home, then ask the samples in both routing modes."""
    task = training.TASKS[task_key]
    workdir = home or Path(tempfile.mkdtemp(prefix="jarvis-quality-"))
    overrides = dict(settings_overrides or {})
    trained = training.run(
        task_key, examples, workdir, seed=seed, probes=0, settings_overrides=overrides, say=say
    )
    train = trained.card.get("train", {})
    gate = trained.card.get("gate", {})
    figures = QualityFigures(
        task=task.name,
        training={
            "promoted": trained.promoted,
            "version": trained.version,
            "threshold_to_active_s": trained.threshold_to_active_s,
            "train_s": train.get("duration_s"),
            "steps": train.get("steps"),
            "replay_rounds": train.get("replay_rounds"),
            "learned": train.get("learned"),
            "gate": {
                k: (gate.get("candidate") or {}).get(k)
                for k in ("examples", "semantic_pass", "agreement", "exact_match")
            },
            "confidence_threshold": trained.card.get("confidence_threshold"),
            "verdict": (gate.get("verdict") or {}).get("reason"),
            "error": trained.error,
        },
        settings=overrides,
    )
    if trained.version is None:
        return figures
    rng = random.Random(seed + 1)
    # the cascade first: if the gate refused the version, the teacher serves, as it would;
    # validity-only routing then gets the version anyway, as a validity-only gate promoted it
    modes = {"cascade": True, "validity only": False}
    runtimes = {
        name: Jarvis(Settings(home=workdir, teacher_seed=seed, **{**overrides, "cascade": cascade}))
        for name, cascade in modes.items()
    }
    samples = _samples(task, runtimes["cascade"], rng, sample, cold_starts)
    for mode, rt in runtimes.items():
        if mode == "validity only" and not trained.promoted:
            rt.store.versions.promote(task.name, trained.version)
            figures.training["promoted_for_validity_only"] = True
            say(f"{trained.version} promoted for validity-only routing (its answers are valid)")
        for sample_name, calls in samples.items():
            t0 = time.perf_counter()
            found = _ask(rt, task, calls)
            figures.samples.setdefault(sample_name, {})[mode] = found.as_dict()
            say(f"{sample_name} / {mode}: {found.as_dict()} in {time.perf_counter() - t0:.0f} s")
        if task.name == "create_next_level":
            result = rt.call(task, NEW_GAME, raise_on_invalid=False)
            reference = rt.teacher_answer(task, NEW_GAME)
            figures.new_game_level_1[mode] = {
                "source": result.source,
                "right": result.output_json == reference,
                "answer": result.output_json,
                "teacher": reference,
            }
    for rt in runtimes.values():
        rt.close()
    return figures
