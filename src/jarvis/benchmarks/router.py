"""The router's own overhead per call, against the bare backend call, in the same run.

An *instant* backend (it returns a prepared valid answer) isolates what JARVIS adds to every
call: rendering the prompt, parsing and validating the answer (including the map's
reachability search), and the durable log write (a committed SQLite WAL transaction holding
the call, its attempts and, on the teacher path, the training example).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.prompts import render_answer, render_messages
from jarvis.core.tasks import Task
from jarvis.routing.router import Router
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.store import Store


class InstantBackend:
    """Answers every request at once with a prepared answer; serves as teacher and student."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    @property
    def name(self) -> str:
        return "instant"

    def active_version(self, task: str) -> str | None:
        return "v0001"

    def generate(self, request: GenerationRequest, version: str | None = None) -> Generation:
        return Generation(text=self.answers[request.task.name], model="instant")


@dataclass
class Figures:
    label: str
    samples_ms: list[float]

    def pct(self, q: float) -> float:
        data = sorted(self.samples_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)


def _inputs(rng: random.Random) -> list[tuple[Task[Any], dict[str, Any], str]]:
    cases: list[tuple[Task[Any], dict[str, Any], str]] = []
    for d in range(1, 21):
        level = oracle_level([], d, rng)
        cases.append(
            (
                create_next_level,
                create_next_level.bind([], d),
                render_answer(create_next_level, level),
            )
        )
        game_map = oracle_map(level, rng)
        cases.append(
            (create_next_map, create_next_map.bind(level), render_answer(create_next_map, game_map))
        )
    return cases


def run(calls: int = 2000, path: str = "student", seed: int = 0) -> dict[str, Any]:
    """Time ``calls`` calls on ``path`` ("student" or "teacher"); return the figures."""
    rng = random.Random(seed)
    cases = _inputs(rng)
    with tempfile.TemporaryDirectory() as home:
        store = Store(f"sqlite:///{Path(home) / 'bench.db'}")
        backend = InstantBackend({})
        student = backend if path == "student" else None
        router = Router(store, lambda task: backend, student=student)
        bare: list[float] = []
        full: list[float] = []
        for i in range(calls + 50):  # the first 50 warm up caches and the connection pool
            task, inputs, answer = cases[i % len(cases)]
            backend.answers[task.name] = answer
            request = GenerationRequest(task, inputs, render_messages(task, inputs))
            t0 = time.perf_counter()
            backend.generate(request)
            t1 = time.perf_counter()
            router.call(task, inputs)
            t2 = time.perf_counter()
            if i >= 50:
                bare.append((t1 - t0) * 1000)
                full.append((t2 - t1) * 1000)
        store.close()
    b, f = Figures("bare backend", bare), Figures("through the router", full)
    overhead = [x - y for x, y in zip(full, bare, strict=True)]
    o = Figures("router overhead", overhead)
    return {
        "path": path,
        "calls": calls,
        "bare_p50_ms": b.p50,
        "bare_p99_ms": b.pct(0.99),
        "router_p50_ms": f.p50,
        "router_p99_ms": f.pct(0.99),
        "overhead_p50_ms": o.p50,
        "overhead_p99_ms": o.pct(0.99),
        "target_p50_ms": 2.0,
    }
