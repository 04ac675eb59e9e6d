"""Serving, measured: the engine against plain transformers, constrained against not, HTTP.

Needs a home whose tasks have active versions (``jarvis bench training --home H`` leaves
one). On the same machine, in one run, on the same prompts (calls the student never trained
on, made like the game makes them):

1. **Latency of a whole typed answer and time to first token**: the engine (llama.cpp, with
   the call's grammar) vs the baseline: plain ``transformers`` ``generate`` (same base, same
   adapter, bf16, KV cache, greedy, no grammar), one call at a time.
2. **Parse and semantic pass rates**: the engine with per-call bounds (and the task's
   steering, where it has one), with the plain output schema only, and without any grammar.
3. **Through the HTTP API** (a live server): p50/p95 of ``/v1/tasks/{task}/call`` answered by
   the student vs the procedural teacher, and throughput with 8 concurrent clients vs 1.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from jarvis.benchmarks.training import TASKS, level_inputs, map_inputs
from jarvis.core.backends import GREEDY
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.models.loading import load_tokenizer, load_with_adapter
from jarvis.models.threads import set_threads
from jarvis.registry import Adapter, Registry
from jarvis.runtime import Jarvis, Settings
from jarvis.runtime.configs import base_spec, engine_config
from jarvis.server import create_app
from jarvis.serving.engine import Engine
from jarvis.store import Store
from jarvis.training.generate import generate_batch

__all__ = ["ServingFigures", "run_serving_benchmark"]


@dataclass
class ModeFigures:
    mode: str
    calls: int = 0
    parsed: int = 0
    valid: int = 0
    seconds: list[float] = field(default_factory=list)
    first_token: list[float] = field(default_factory=list)
    tokens: int = 0
    sampled: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "calls": self.calls,
            "parse_rate": self.parsed / self.calls if self.calls else None,
            "semantic_rate": self.valid / self.calls if self.calls else None,
            "p50_s": _pct(self.seconds, 50),
            "p95_s": _pct(self.seconds, 95),
            "mean_s": statistics.fmean(self.seconds) if self.seconds else None,
            "ttft_p50_s": _pct(self.first_token, 50),
            "tokens_per_answer": self.tokens / self.calls if self.calls else None,
            "sampled_share": self.sampled / self.tokens if self.tokens else None,
        }


@dataclass
class ServingFigures:
    task: str
    version: str
    engine_backend: str | None
    modes: list[ModeFigures]
    http: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "version": self.version,
            "engine": self.engine_backend,
            "modes": [m.as_dict() for m in self.modes],
            "http": self.http,
        }


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _judge(task: Task[Any], inputs: dict[str, Any], text: str, figures: ModeFigures) -> None:
    verdict = validate_answer(task, inputs, text)
    figures.calls += 1
    figures.parsed += verdict.stage != "format"
    figures.valid += verdict.valid


def _baseline(
    settings: Settings, task: Task[Any], version: str, prompts: list[dict[str, Any]], cap: int
) -> ModeFigures:
    """Plain transformers generate, one call at a time (the reference implementation)."""
    base = base_spec(settings).resolve()
    set_threads(settings.train_threads)
    adapter = _registry(settings).adapter(task.name, version)
    model, tokenizer = load_with_adapter(base.path, adapter.path), load_tokenizer(base.path)
    figures = ModeFigures("transformers generate, no grammar (baseline)")
    for inputs in prompts:
        started = time.perf_counter()
        first: list[float] = []
        streamer = _FirstToken(first, started)
        out = generate_batch(model, tokenizer, task, [inputs], GREEDY, cap, streamer=streamer)[0]
        figures.seconds.append(time.perf_counter() - started)
        figures.first_token.extend(first[:1])
        figures.tokens += out.tokens_out
        figures.sampled += out.tokens_out
        _judge(task, inputs, out.text, figures)
    return figures


def _registry(settings: Settings) -> Registry:
    return Registry(Store(settings.resolved_database_url), settings.models_dir)


class _FirstToken:
    """A transformers streamer that notes when the first new token arrives."""

    def __init__(self, sink: list[float], started: float) -> None:
        self.sink = sink
        self.started = started
        self.calls = 0

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls == 2:  # the first put is the prompt
            self.sink.append(time.perf_counter() - self.started)

    def end(self) -> None:
        pass


def _engine_mode(
    engine: Engine,
    task: Task[Any],
    adapter: Adapter,
    prompts: list[dict[str, Any]],
    cap: int,
    mode: str,
) -> ModeFigures:
    figures = ModeFigures(mode)
    bounds = "output schema only" not in mode  # else the type's schema, not the call's
    constrained = "no grammar" not in mode
    steering = engine.steering
    engine.steering = "steering" in mode
    try:
        for inputs in prompts:
            out = engine.generate(
                task,
                inputs,
                adapter=adapter,
                sampling=GREEDY,
                max_new_tokens=cap,
                constrained=constrained,
                bounds=bounds,
            )
            figures.seconds.append(out.total_s)
            if out.first_token_s is not None:
                figures.first_token.append(out.first_token_s)
            figures.tokens += out.tokens_out
            figures.sampled += out.sampled
            _judge(task, inputs, out.text, figures)
    finally:
        engine.steering = steering
    return figures


def _http(
    home: Path, task: Task[Any], make: Callable[[random.Random], dict[str, Any]], calls: int
) -> dict[str, Any]:
    """p50/p95 through a live server, student vs teacher; 8 clients vs 1."""

    results: dict[str, Any] = {}
    for label, student in (("student", "local"), ("procedural teacher", "none")):
        rt = Jarvis(Settings(home=home, student=student))
        server = uvicorn.Server(
            uvicorn.Config(create_app(rt), host="127.0.0.1", port=0, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/tasks/{task.name}/call"
        rng = random.Random(99)
        bodies = [{"input": task.dump_inputs(make(rng))} for _ in range(calls)]
        with httpx.Client(timeout=300) as client:
            client.post(url, json=bodies[0])  # warm: load the model and adapter
            seconds: list[float] = []
            sources: list[str] = []
            for body in bodies:
                started = time.perf_counter()
                envelope = client.post(url, json=body).json()
                seconds.append(time.perf_counter() - started)
                sources.append(envelope.get("source", "?"))
            single_rps = calls / sum(seconds)

            def one(body: dict[str, Any], url: str = url) -> None:
                client.post(url, json=body)

            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(one, bodies))
            concurrent_rps = calls / (time.perf_counter() - started)
        server.should_exit = True
        thread.join(timeout=10)
        rt.close()
        results[label] = {
            "p50_ms": 1000 * (_pct(seconds, 50) or 0),
            "p95_ms": 1000 * (_pct(seconds, 95) or 0),
            "student_share": sources.count("student") / len(sources),
            "rps_1_client": single_rps,
            "rps_8_clients": concurrent_rps,
        }
    return results


def run_serving_benchmark(
    home: Path,
    task_key: str,
    *,
    latency_prompts: int = 10,
    quality_prompts: int = 200,
    http_calls: int = 20,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> ServingFigures:
    task = TASKS[task_key]
    settings = Settings(home=home)
    registry = _registry(settings)
    version = registry.active(task.name)
    adapter = registry.adapter(task.name, version) if version else None
    registry.store.close()
    if version is None:
        raise SystemExit(
            f"{task.name} has no active version in {home}: run `jarvis bench training "
            f"--task {task_key} --home {home}` first"
        )
    make = level_inputs if task_key == "level" else map_inputs
    rng = random.Random(seed)
    prompts = [make(rng) for _ in range(max(latency_prompts, quality_prompts))]
    cap = 160 if task_key == "level" else 900

    engine = Engine(engine_config(settings))
    assert adapter is not None
    engine.generate(task, prompts[0], adapter=adapter, sampling=GREEDY, max_new_tokens=8)  # warm
    say(f"{task.name}@{version}: engine {engine.backend}; baseline on {latency_prompts} prompts")
    modes = [_baseline(settings, task, version, prompts[:latency_prompts], cap)]
    modes_run = [
        "engine, grammar with per-call bounds",
        "engine, grammar from the output schema only",
        "engine, no grammar",
    ]
    if task.steering_fn is not None:
        modes_run.insert(0, "engine, per-call bounds + steering")
    for mode in modes_run:
        say(f"{mode} on {quality_prompts} prompts")
        modes.append(_engine_mode(engine, task, adapter, prompts[:quality_prompts], cap, mode))
    say(f"HTTP: {http_calls} calls, student vs teacher, 1 vs 8 clients")
    http = _http(home, task, make, http_calls)
    return ServingFigures(task.name, version, engine.backend, modes, http)
