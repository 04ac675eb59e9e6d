"""kill -9 of the server with requests in flight, and of an import half-way.

Both run ``jarvis`` as a real subprocess on a temporary JARVIS_HOME (SQLite in WAL mode, the
procedural teacher) and SIGKILL it. Afterwards the store must open cleanly (SQLite recovers
the WAL), hold every answered call exactly once and nothing twice, and work again.
(A kill -9 of a training job is ``tests/training/test_job.py::
test_a_killed_run_leaves_the_active_version_untouched``.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.threads import THREADS
from jarvis import Settings, Store

pytestmark = pytest.mark.slow

TASK = "create_next_level"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jarvis(home: Path, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "JARVIS_HOME": str(home), "JARVIS_STUDENT": "none"}
    for var in ("JARVIS_DATABASE_URL", "JARVIS_TEACHER", "JARVIS_TEACHER_BASE_URL"):
        env.pop(var, None)
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen([sys.executable, "-m", "jarvis.cli", *args], env=env, **popen)


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    process = jarvis(home, "serve", "--port", str(port))
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.1)


def level(name: int) -> dict[str, int]:
    """A previous level whose ``name`` tags the request (its inputs are unique)."""
    return {
        "name": name,
        "difficulty": 1,
        "time": 300,
        "width": 10,
        "height": 10,
        "num_wall": 5,
        "num_enemies": 2,
    }


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_kill_9_of_the_server_mid_traffic_loses_no_answered_call_and_logs_none_twice(
    home: Path,
) -> None:
    port = free_port()
    server = serve(home, port)
    url = f"http://127.0.0.1:{port}/v1/tasks/{TASK}/call"
    answered: dict[int, dict[str, Any]] = {}  # request tag → the envelope the client got
    sent: set[int] = set()
    lock = threading.Lock()
    counter = iter(range(1, 1_000_000))
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                with lock:
                    tag = next(counter)
                    sent.add(tag)
                body = {"input": {"last_levels": [level(tag)], "difficulty": 2}}
                try:
                    response = http.post(url, json=body)
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        answered[tag] = response.json()

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(answered) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(server.pid, signal.SIGKILL)  # requests are in flight on six connections
    server.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(answered) >= 150, "the server answered too few calls before the kill"
    assert len(sent) > len(answered), "no request was in flight at the kill"

    db = Settings(home=home).home / "jarvis.db"
    assert integrity(db) == "ok"  # the WAL is recovered on open
    store = Store(f"sqlite:///{db}")
    rows = store.recent_calls(TASK, limit=100_000)
    tags = Counter(row["input"]["last_levels"][0]["name"] for row in rows)
    assert max(tags.values()) == 1, "a call was logged twice"
    assert set(answered) <= set(tags), "an answered call is missing from the store"
    assert set(tags) <= sent
    for tag, envelope in answered.items():
        if envelope.get("call_id") is not None:  # the envelope names the logged call
            (row,) = [r for r in rows if r["input"]["last_levels"][0]["name"] == tag]
            assert row["id"] == envelope["call_id"]
    for row in rows[:50]:  # every call was written with its attempts, in one transaction
        assert len(store.call_attempts(row["id"])) == row["attempts"]
    store.close()

    restarted = serve(home, port)  # the same home: it opens cleanly and serves again
    try:
        again = httpx.post(
            url, json={"input": {"last_levels": [level(10**6)], "difficulty": 2}}, timeout=30
        )
        assert again.status_code == 200 and again.json()["valid"]
    finally:
        restarted.send_signal(signal.SIGINT)
        restarted.wait(timeout=30)
    store = Store(f"sqlite:///{db}")
    assert len(store.recent_calls(TASK, limit=100_000)) == len(rows) + 1
    store.close()


def big_import(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):  # distinct inputs: n distinct examples
        call = f"{TASK}\n\nlast_levels = [{json.dumps(level(i + 1))}]\ndifficulty = 1"
        answer = level(i + 1) | {"name": 1, "difficulty": 1}
        lines.append(json.dumps({"input": call, "output": json.dumps(answer)}))
    path.write_text("\n".join(lines) + "\n")
    return path


def example_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM examples").fetchone()[0])


def test_kill_9_of_an_import_leaves_all_or_nothing_and_a_rerun_adds_the_rest(
    home: Path, tmp_path: Path
) -> None:
    n = 6000
    source = big_import(tmp_path / "big.jsonl", n)
    db = Settings(home=home).home / "jarvis.db"
    process = jarvis(home, "import", str(source))
    # kill it while it writes: the WAL grows past its start-up size once the examples go in
    deadline = time.monotonic() + 120
    wal = db.with_name("jarvis.db-wal")
    while process.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > 256 * 1024:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the import finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    assert integrity(db) == "ok"
    assert example_count(db) in (0, n)  # one transaction: all of the file, or none of it

    rerun = jarvis(home, "import", str(source), stdout=subprocess.PIPE)
    out = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, out
    assert example_count(db) == n  # the rest added, nothing twice
    again = jarvis(home, "import", str(source), stdout=subprocess.PIPE)
    out = again.communicate(timeout=300)[0].decode()
    assert again.returncode == 0 and f"0 added, {n} duplicates skipped" in out, out
    assert example_count(db) == n


def test_kill_9_of_the_worker_and_its_job_after_staging_leaves_no_version_behind(
    home: Path, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed later than tests/training/test_job.py's kill: the adapter is already staged (the
    gate is running). Recovery fails the run and the version, removes the staged directory,
    and the active version stays."""
    from jarvis import Jarvis
    from jarvis.registry import Registry, version_dir
    from jarvis.rpg import create_next_level
    from jarvis.training.worker import pid_alive

    env = {
        "JARVIS_BASE_MODEL": str(tiny_base),
        "JARVIS_THRESHOLD": "12",
        "JARVIS_TRAIN_MAX_STEPS": "2",
        "JARVIS_LORA_RANK": "4",
        "JARVIS_LORA_ALPHA": "8",
        "JARVIS_GATE_EXAMPLES": "40",
        "JARVIS_GATE_MIN_EXAMPLES": "2",
        "JARVIS_GATE_FLOOR": "0",
        "JARVIS_AGREEMENT_FLOOR": "0",
        "JARVIS_TRAIN_THREADS": str(THREADS),
        "JARVIS_ENGINE": "torch",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # for this process and the worker it starts
    settings = Settings(home=home, teacher_seed=3)
    rt = Jarvis(settings)
    for i in range(60):
        rt.call(create_next_level, {"last_levels": [], "difficulty": 1 + i % 20})
    first = rt.worker().step()
    assert first is not None and first.status == "succeeded", first
    assert rt.store.versions.active("create_next_level") == "v0001"
    n = rt.store.example_count("create_next_level", "train")
    assert rt.store.runs.enqueue("create_next_level", {"train_examples": n}, "test") is not None

    worker = jarvis(home, "worker", start_new_session=True)
    folder = version_dir(settings.models_dir, "create_next_level", "v0001").parent
    deadline = time.monotonic() + 120
    while not any(
        (p / "adapter" / "adapter_config.json").is_file() for p in folder.glob(".v0002-*")
    ):
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, rt.store.runs.recent("create_next_level")
        time.sleep(0.02)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its job, at once
    worker.wait()

    run = rt.store.runs.recent("create_next_level")[0]
    assert run["status"] == "running" and run["version"] == "v0002"
    deadline = time.monotonic() + 30
    while pid_alive(run["pid"]):  # SIGKILL is sent; the job's teardown takes a moment
        assert time.monotonic() < deadline, "the job survived SIGKILL"
        time.sleep(0.05)
    assert rt.worker().recover() == [run["id"]]
    run = rt.store.runs.get(run["id"]) or {}
    assert run["status"] == "failed" and "interrupted" in run["error"]
    statuses = {
        v["name"]: v["status"]
        for v in Registry(rt.store, settings.models_dir).versions("create_next_level")
    }
    assert statuses == {"v0001": "active", "v0002": "failed"}
    assert sorted(p.name for p in folder.iterdir()) == ["v0001"]  # staging removed
    rt.close()
