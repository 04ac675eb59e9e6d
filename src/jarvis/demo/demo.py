"""The main demo: a simulated player runs the game's levels through JARVIS until the student
takes over.

Three phases, each real: **teacher** — levels are played (every level and map a call through
the router) until the tasks being trained reach their threshold by the worker's own policy;
**training** — the worker runs the job in its own process (LoRA on CPU, held-out gate,
promotion) while the player keeps playing at a gentle pace; **student** — the player goes on,
and the promoted version answers, validated, with retries and fallbacks to the teacher.
The figures come from the store, the same numbers the dashboard shows.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jarvis.core.agreement import compare_answers
from jarvis.core.results import CallResult
from jarvis.demo.play import KEEP_LEVELS, LevelManager, PlayedLevel
from jarvis.rpg.models import Level
from jarvis.rpg.oracle import oracle_level
from jarvis.runtime import Jarvis
from jarvis.training.worker import JobOutcome
from jarvis.web.views import task_row

__all__ = ["Demo", "PhaseStats"]

OnProgress = Callable[[dict[str, Any]], None]
GAME_LEVELS = (2, 12)  # how many levels a simulated player plays in one sitting
MAX_SAVED_LEVEL = 30  # the furthest level a saved game resumes at


@dataclass
class PhaseStats:
    """What one phase's calls did, per task."""

    name: str
    levels: int = 0
    seconds: float = 0.0
    calls: dict[str, list[CallResult]] = field(default_factory=dict)
    agrees: dict[str, list[bool]] = field(default_factory=dict)
    """Per task, per call: does the served answer agree with the teacher's to the same call
    (the task's own comparison; a teacher's answer agrees by definition)."""
    new_games: list[bool] = field(default_factory=list)
    """Per new game (a level asked with no previous level): was its level 1 right."""

    def add(self, played: PlayedLevel, agrees: dict[str, bool]) -> None:
        self.levels += 1
        for call in (played.level_call, played.map_call):
            self.calls.setdefault(call.task, []).append(call)
            self.agrees.setdefault(call.task, []).append(agrees[call.task])
        if played.new_game:
            self.new_games.append(agrees[played.level_call.task])

    def as_dict(self) -> dict[str, Any]:
        tasks = {}
        for task, calls in self.calls.items():
            by_source: dict[str, list[float]] = {"teacher": [], "student": []}
            for c in calls:
                by_source[c.source].append(c.latency_ms)
            student = sum(c.source == "student" for c in calls)
            agree = self.agrees.get(task, [])
            served = [a for a, c in zip(agree, calls, strict=True) if c.source == "student"]
            tasks[task] = {
                "agree": sum(agree),
                "agree_share": round(sum(agree) / len(agree), 4) if agree else None,
                # the student's own answers only: what routing to it costs in quality
                "student_agree_share": round(sum(served) / len(served), 4) if served else None,
                "escalated": sum(c.escalated for c in calls),
                "calls": len(calls),
                "student": student,
                "student_share": round(student / len(calls), 4),
                "fallbacks": sum(c.fallback for c in calls),
                "valid_share": round(sum(c.valid for c in calls) / len(calls), 4),
                "latency_p50_ms": {
                    k: round(statistics.median(v), 2) if v else None for k, v in by_source.items()
                },
            }
        return {
            "phase": self.name,
            "levels": self.levels,
            "seconds": round(self.seconds, 1),
            "new_games": len(self.new_games),
            "new_games_right": sum(self.new_games),
            "tasks": tasks,
        }


class Demo:
    def __init__(
        self,
        rt: Jarvis,
        *,
        train: Sequence[str],
        on_level: Callable[[PhaseStats, PlayedLevel], None] | None = None,
        max_warmup_levels: int = 10_000,
        seed: int = 0,
    ) -> None:
        for name in train:
            rt.task(name)  # unknown task: a clear error before anything runs
        self.rt = rt
        self.train = list(train)
        self.worker = rt.worker(watch=self.train)
        self.rng = random.Random(seed)
        self.games = 0
        self._new_game()
        self.on_level = on_level
        self.max_warmup_levels = max_warmup_levels
        self.phases: list[PhaseStats] = []
        self.outcomes: list[JobOutcome] = []
        self._lock = threading.Lock()  # the player is shared by the training-phase thread

    def _play(self, phase: PhaseStats) -> None:
        with self._lock:
            if self.player.current_level >= self.game_length:
                self._new_game()
            played = self.player.next_level()
        phase.add(played, {c.task: self._agrees(c, played) for c in played.calls})
        if self.on_level is not None:
            self.on_level(phase, played)

    def _agrees(self, call: CallResult, played: PlayedLevel) -> bool:
        """Does the answer served agree with what the teacher says to the same call?"""
        if call.source == "teacher":
            return call.valid
        task = self.rt.task(call.task)
        if task.compare == "valid":
            return call.valid  # a random teacher: any valid answer is as good as its own
        inputs = played.inputs[call.task]
        reference = self.rt.teacher_answer(task, inputs)
        return compare_answers(task, call.output_json, reference, inputs, valid=call.valid).agrees

    def _new_game(self) -> None:
        """Many players, not one endless run: each game is a saved game resumed at a random
        level (or a new one), played for a few levels, with the difficulty a level or so
        behind or on schedule. The calls then look like a game's real traffic."""
        start = self.rng.choice([0, self.rng.randint(1, MAX_SAVED_LEVEL)])
        difficulty = max(1, (start + 1) // 2 + 1 - self.rng.randint(0, 1))
        # Saves come from several campaigns, so level names run ahead of the difficulty by a
        # campaign's offset. The save's last levels (what its file holds) follow the rules.
        offset = self.rng.randint(0, MAX_SAVED_LEVEL) if start else 0
        saved: list[Level] = []
        for n in range(max(1, start - KEEP_LEVELS + 1), start + 1):
            saved.append(oracle_level(saved, max(1, (n + 1) // 2), self.rng))
            saved[-1] = saved[-1].model_copy(update={"name": n + offset})
        self.player = LevelManager(self.rt, start, difficulty, saved)
        self.game_length = start + self.rng.randint(*GAME_LEVELS)
        self.games += 1

    def warm_up(self) -> PhaseStats:
        """Play on the teacher until the worker's policy queues a run for a trained task."""
        phase = PhaseStats("teacher")
        self.phases.append(phase)
        started = time.perf_counter()
        self.worker.recover()
        self.worker.enqueue_due()
        while not self._ready() and phase.levels < self.max_warmup_levels:
            self._play(phase)
            self.worker.enqueue_due()
        phase.seconds = time.perf_counter() - started
        return phase

    def _queued(self) -> list[dict[str, Any]]:
        return [
            r
            for r in reversed(self.rt.store.runs.recent(limit=20))
            if r["status"] == "queued" and r["task"] in self.train
        ]

    def _ready(self) -> bool:
        """Every trained task has a run queued, or a version active already (a demo run
        again on the same home goes straight on to the student)."""
        queued = {r["task"] for r in self._queued()}
        return all(t in queued or self.rt.store.versions.active(t) for t in self.train)

    def train_queued(self, on_progress: OnProgress, pace_s: float = 1.5) -> list[JobOutcome]:
        """Run the queued runs one at a time; the player keeps playing every ``pace_s``."""
        phase = PhaseStats("training")
        self.phases.append(phase)
        started = time.perf_counter()
        outcomes = [self._run(r["id"], phase, on_progress, pace_s) for r in self._queued()]
        phase.seconds = time.perf_counter() - started
        self.outcomes.extend(outcomes)
        return outcomes

    def _run(
        self, run_id: int, phase: PhaseStats, on_progress: OnProgress, pace_s: float
    ) -> JobOutcome:
        result: list[JobOutcome] = []
        tail: list[str] = []  # the job's last output lines, shown if it fails

        def job() -> None:
            result.append(self.worker.run_job(run_id, on_line=tail.append))

        thread = threading.Thread(target=job, name="jarvis-demo-job", daemon=True)
        thread.start()
        next_level = time.monotonic() + pace_s
        while thread.is_alive():
            thread.join(timeout=0.25)
            on_progress(self.rt.store.runs.get(run_id) or {})
            if pace_s > 0 and time.monotonic() >= next_level:
                self._play(phase)
                next_level = time.monotonic() + pace_s
        on_progress(self.rt.store.runs.get(run_id) or {})
        outcome = result[0] if result else None
        if outcome is None:  # run_job itself raised: the store says what became of the run
            run = self.rt.store.runs.get(run_id) or {}
            outcome = JobOutcome(
                run_id, str(run.get("task")), -1, str(run.get("status")), None, run.get("error")
            )
        if outcome.status != "succeeded" and tail:
            outcome.error = f"{outcome.error}\n" + "\n".join(tail[-15:])
        return outcome

    def play_on(self, levels: int) -> PhaseStats:
        """Play ``levels`` more levels on whatever is active now."""
        phase = PhaseStats("student")
        self.phases.append(phase)
        started = time.perf_counter()
        for _ in range(levels):
            self._play(phase)
        phase.seconds = time.perf_counter() - started
        return phase

    def summary(self) -> dict[str, Any]:
        rows = [task_row(self.rt, s.as_dict()) for s in self.rt.store.task_stats()]
        return {
            "teacher": self.rt.teachers.describe(),
            "base_model": self.rt.settings.base_model,
            "trained": self.train,
            "levels": sum(p.levels for p in self.phases),
            "games": self.games,
            "phases": [p.as_dict() for p in self.phases],
            "runs": [
                {
                    "run_id": o.run_id,
                    "task": o.task,
                    "status": o.status,
                    "version": o.version,
                    "promoted": bool(o.version)
                    and self.rt.store.versions.active(o.task) == o.version,
                    "error": o.error,
                    "card": self._card(o),
                }
                for o in self.outcomes
            ],
            "tasks": rows,
        }

    def _card(self, outcome: JobOutcome) -> dict[str, Any] | None:
        if not outcome.version:
            return None
        version = self.rt.store.versions.get(outcome.task, outcome.version) or {}
        card = version.get("card") or {}
        train, gate = card.get("train") or {}, card.get("gate") or {}
        return {
            "examples": train.get("examples"),
            "steps": train.get("steps"),
            "final_loss": train.get("final_loss"),
            "duration_s": train.get("duration_s"),
            "gate_semantic_pass": (gate.get("candidate") or {}).get("semantic_pass"),
            "gate_agreement": (gate.get("candidate") or {}).get("agreement"),
            "confidence_threshold": card.get("confidence_threshold"),
            "verdict": (gate.get("verdict") or {}).get("reason"),
        }
