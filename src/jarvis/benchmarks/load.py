"""The load suite: many concurrent clients call both RPG tasks through the HTTP API.

A real server runs in its own process (uvicorn, as ``jarvis serve``) on loopback with the
student active; a fraction of the student's answers is corrupted on purpose so retries and
fallbacks happen under load. Clients (threads, one HTTP connection each) call
``/v1/tasks/{task}/call`` for a fixed time. Then the **reconciliation**: every request a
client saw answered names its logged call (``call_id``), and the store must hold exactly
those rows — none lost, none twice, none extra.

The student is either ``engine`` (the active versions in ``--home``, served by the real
engine: the load is then bounded by CPU decoding) or ``oracle`` (the procedural generator
standing in for a trained student, so the router, the store and the HTTP layer are what is
measured). Both are labelled as such in the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from jarvis.benchmarks.training import level_inputs, map_inputs
from jarvis.core.backends import Generation, GenerationRequest, StudentBackend
from jarvis.core.errors import ConfigError
from jarvis.registry import Registry
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.runtime import Jarvis, Settings
from jarvis.runtime.configs import engine_config
from jarvis.server import create_app
from jarvis.serving.engine import Engine
from jarvis.serving.local import LocalStudent
from jarvis.store import Store, schema

__all__ = ["CorruptingStudent", "LoadConfig", "OracleStudent", "ratios", "run"]

TASKS = ("create_next_level", "create_next_map")


class OracleStudent:
    """The procedural generator answering as a student would (version ``oracle``)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def active_version(self, task: str) -> str | None:
        return "oracle" if task in TASKS else None

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        with self.lock:
            seed = self.rng.randrange(1 << 30)
        output = request.task.run_oracle(request.inputs, random.Random(seed))
        text = json.dumps(request.task.dump_output(output))
        return Generation(text=text, model="oracle-as-student", tokens_in=0, tokens_out=0)


class CorruptingStudent:
    """Wraps a student and cuts a fraction of its answers in half (an invalid answer)."""

    def __init__(self, inner: StudentBackend, rate: float, seed: int = 0) -> None:
        self.inner = inner
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def active_version(self, task: str) -> str | None:
        return self.inner.active_version(task)

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        gen = self.inner.generate(request, version)
        with self.lock:
            corrupt = self.rng.random() < self.rate
        if corrupt:
            return dataclasses.replace(gen, text=gen.text[: len(gen.text) // 2])
        return gen


@dataclass
class LoadConfig:
    clients: int = 32
    seconds: float = 20.0
    invalid_rate: float = 0.1
    student: str = "oracle"  # or "engine"
    home: Path | None = None
    database_url: str | None = None  # None: SQLite in the home
    max_requests: int = 100_000
    seed: int = 0
    batch_size: int | None = None  # the engine's JARVIS_BATCH_SIZE (None: the setting's)
    tasks: tuple[str, ...] = TASKS  # what the clients call, drawn evenly (one: one adapter)
    warmup: bool = True  # one call per task before the clock starts (loads the engine)


@dataclass
class ClientLog:
    latencies_ms: list[float] = field(default_factory=list)
    call_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _inputs(rng: random.Random, task: str) -> dict[str, Any]:
    """A call's inputs as the game makes them, in the JSON form the API takes."""
    if task == "create_next_level":
        return create_next_level.dump_inputs(level_inputs(rng))
    return create_next_map.dump_inputs(map_inputs(rng, rng.randint(1, 8)))


LOCK = threading.Lock()  # guards the shared request budget of the client threads


def _client(
    url: str, tasks: tuple[str, ...], deadline: float, seed: int, budget: list[int], log: ClientLog
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.monotonic() < deadline:
            with LOCK:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            task = rng.choice(tasks)
            body = {"input": _inputs(rng, task)}
            started = time.perf_counter()
            try:
                response = http.post(f"/v1/tasks/{task}/call", json=body)
            except httpx.HTTPError as exc:
                log.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                log.errors.append(f"{response.status_code}: {response.text[:200]}")
                continue
            envelope = response.json()
            if not envelope.get("valid"):
                log.errors.append(f"invalid answer: {envelope.get('reason')}")
            log.latencies_ms.append(elapsed)
            log.call_ids.append(int(envelope["call_id"]))


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run(cfg: LoadConfig) -> dict[str, Any]:
    """Start a server, load it, stop it, reconcile; return the figures."""

    with tempfile.TemporaryDirectory(prefix="jarvis-load-") as tmp:
        home = cfg.home or Path(tmp) / "home"
        env = {**os.environ, "JARVIS_HOME": str(home), "JARVIS_MAX_PENDING": "1024"}
        if cfg.batch_size is not None:
            env["JARVIS_BATCH_SIZE"] = str(cfg.batch_size)
        if cfg.database_url:
            env["JARVIS_DATABASE_URL"] = cfg.database_url
        settings = Settings(home=home, database_url=cfg.database_url)
        settings.ensure_home()
        store = Store(settings.resolved_database_url)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jarvis.benchmarks.load",
                "serve",
                "--port",
                str(port),
                "--student",
                cfg.student,
                "--invalid-rate",
                str(cfg.invalid_rate),
                "--seed",
                str(cfg.seed),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, server)
            if cfg.warmup:
                _warm_up(url, cfg.seed)
            start_id = _max_call_id(store)  # warm-up rows are not reconciled
            before = httpx.get(f"{url}/metrics", timeout=10).text  # the run's own counts: diffs
            logs = [ClientLog() for _ in range(cfg.clients)]
            budget = [cfg.max_requests]
            started = time.monotonic()
            deadline = started + cfg.seconds
            threads = [
                threading.Thread(
                    target=_client, args=(url, cfg.tasks, deadline, cfg.seed + i, budget, logs[i])
                )
                for i in range(cfg.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        rows = _rows_since(store, start_id)
        store.close()
    return _report(cfg, logs, rows, wall, metrics, before)


def _wait_ready(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            err = server.stderr.read() if server.stderr else ""
            raise ConfigError(f"the load server exited at start: {err[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ConfigError("the load server did not start within 120 s")


def _warm_up(url: str, seed: int) -> None:
    """One call per task: the engine loads its base and adapters before the clock starts."""
    rng = random.Random(seed - 1)
    with httpx.Client(base_url=url, timeout=600) as http:
        for task in TASKS:
            http.post(f"/v1/tasks/{task}/call", json={"input": _inputs(rng, task)})


def _max_call_id(store: Any) -> int:

    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(schema.calls.c.id))).scalar() or 0)


def _rows_since(store: Any, start_id: int) -> list[dict[str, Any]]:

    c = schema.calls.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.id, c.task, c.source, c.fallback, c.valid, c.attempts).where(
                c.id > start_id
            )
        ).all()
    return [dict(r._mapping) for r in rows]


def _report(
    cfg: LoadConfig,
    logs: list[ClientLog],
    rows: list[dict[str, Any]],
    wall: float,
    metrics: str,
    before: str,
) -> dict[str, Any]:
    latencies = [x for log in logs for x in log.latencies_ms]
    seen = [i for log in logs for i in log.call_ids]
    errors = [e for log in logs for e in log.errors]
    row_ids = [r["id"] for r in rows]
    seen_set, row_set = set(seen), set(row_ids)
    by_source: dict[str, int] = {}
    for r in rows:
        key = "fallback" if r["fallback"] else r["source"]
        by_source[key] = by_source.get(key, 0) + 1
    return {
        "backend": "postgresql" if (cfg.database_url or "").startswith("postgres") else "sqlite",
        "student": cfg.student,
        "clients": cfg.clients,
        "batch_size": cfg.batch_size,
        "tasks": list(cfg.tasks),
        "seconds": round(wall, 1),
        "invalid_rate": cfg.invalid_rate,
        "answered": len(latencies),
        "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
        "latency_ms": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p95": _percentile(latencies, 0.95),
            "p99": _percentile(latencies, 0.99),
        },
        "errors": len(errors),
        "error_examples": errors[:5],
        "rows": len(rows),
        "rows_by_source": by_source,
        "rows_by_task": dict(Counter(r["task"] for r in rows)),
        "rows_retried": sum(1 for r in rows if r["attempts"] > 1),
        "reconciliation": {
            "answered_without_row": len(seen_set - row_set),  # lost
            "answered_twice": len(seen) - len(seen_set),  # one row named by two answers
            "rows_without_answer": len(row_set - seen_set),  # duplicated or unacknowledged
        },
        "server_fallbacks_metric": _metric(metrics, "jarvis_fallbacks_total"),
        "server": server_figures(before, metrics, wall),
    }


def server_figures(before: str, after: str, wall: float) -> dict[str, float | None]:
    """Where the server's time went between two scrapes of its ``/metrics`` (the run's start
    and end, ``wall`` seconds apart): the engine's forward passes — how many, how full
    (answers and tokens per pass), their share of the wall time — and the CPU cores the
    server process kept busy."""

    def grew(name: str) -> float | None:
        start, end = _metric(before, name), _metric(after, name)
        return None if end is None else end - (start or 0.0)

    steps = grew("jarvis_batch_steps_total")
    answers = grew("jarvis_batch_answers_total")
    tokens = grew("jarvis_batch_tokens_total")
    forward = grew("jarvis_batch_forward_seconds_total")
    forward_ms = None if forward is None else forward * 1000
    cpu = grew("process_cpu_seconds_total")

    def per(x: float | None, y: float | None, digits: int = 2) -> float | None:
        return round(x / y, digits) if x is not None and y else None

    return {
        "batch_steps": steps,
        "answers_per_pass": per(answers, steps),
        "tokens_per_pass": per(tokens, steps, 1),
        "ms_per_pass": per(forward_ms, steps, 1),
        "ms_per_token": per(forward_ms, tokens),
        "forward_share_of_wall": per(forward, wall),
        "cpu_cores_busy": per(cpu, wall),
    }


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each batched run against the serial run (batch size 1) of the same store and clients:
    throughput and latency percentiles as multiples of the serial figures."""
    serial = {(r["backend"], r["clients"]): r for r in results if r.get("batch_size") == 1}
    out = []
    for r in results:
        base = serial.get((r["backend"], r["clients"]))
        if base is None or r.get("batch_size") in (None, 1):
            continue
        row: dict[str, Any] = {
            "backend": r["backend"],
            "clients": r["clients"],
            "batch_size": r["batch_size"],
            "throughput": _ratio(r["throughput_rps"], base["throughput_rps"]),
        }
        for q in ("p50", "p95", "p99"):
            row[q] = _ratio(r["latency_ms"][q], base["latency_ms"][q])
        out.append(row)
    return out


def _ratio(new: float | None, old: float | None) -> float | None:
    return round(new / old, 3) if new is not None and old else None


def _metric(text: str, name: str) -> float | None:
    """The sum of every sample named ``name`` in a Prometheus exposition, or None."""
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    return sum(values) if values else None


def serve(port: int, student: str, invalid_rate: float, seed: int) -> None:
    """The server side (its own process): the API with a corrupting student."""
    settings = Settings()
    inner: StudentBackend
    if student == "engine":
        registry = Registry(Store(settings.resolved_database_url), settings.models_dir)
        engine = Engine(engine_config(settings))
        inner = LocalStudent(registry, engine, max_tokens=settings.max_tokens)
    elif student == "oracle":
        inner = OracleStudent(seed)
    else:
        raise ConfigError(f"unknown student {student!r}: engine or oracle")
    rt = Jarvis(settings, student=CorruptingStudent(inner, invalid_rate, seed))
    if student == "engine":
        rt.engine = engine  # /metrics reports its batch, and it is closed with the runtime
    rt.sync_tasks()
    uvicorn.run(
        create_app(rt, host="127.0.0.1"),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The load suite's server process.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--student", default="oracle")
    s.add_argument("--invalid-rate", type=float, default=0.1)
    s.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    serve(args.port, args.student, args.invalid_rate, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
