"""The worker: watches every task and runs training jobs, one at a time, each in a subprocess.

Restartable: on start (and before each job) it marks runs whose process is gone as failed,
so a kill -9 of the worker or of a job never leaves a run "running" forever, and never touches
the active version. A job keeps running if only the worker dies; the next worker waits for it.

Runs are queued in one place (:func:`queue_run`): by the worker's policy, ``jarvis train``
and the API alike.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from jarvis.catalogue import TaskCatalogue
from jarvis.core.errors import ConfigError, ConflictError
from jarvis.core.task_settings import TaskSettingsFor
from jarvis.registry import Registry
from jarvis.store import Store
from jarvis.training.policy import canary_due, rollback_due, training_due

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobLauncher:
    """How a run's process is started: ``python -m <module> RUN --settings FILE``, with
    ``settings`` (what that module reads) in a private file, removed afterwards. The runtime
    provides it; the worker only passes it on."""

    module: str
    settings: dict[str, Any] = field(default_factory=dict)

    def argv(self, run_id: int, settings_path: str) -> list[str]:
        return [sys.executable, "-m", self.module, str(run_id), "--settings", settings_path]


@dataclass(frozen=True)
class WorkerConfig:
    task_settings: TaskSettingsFor
    launcher: JobLauncher
    poll_s: float = 2.0


def queue_run(store: Store, task: str, overrides: dict[str, Any], reason: str) -> tuple[int, int]:
    """Queue a training run of ``task`` on all its training examples; (run id, examples).

    Raises :class:`ConflictError` when there is nothing to train on (``no_examples``) or a run
    is already queued or running (``busy``).
    """
    n_train = store.example_count(task, "train")
    if n_train == 0:
        raise ConflictError(f"task {task!r} has no training examples yet", code="no_examples")
    run_id = store.runs.enqueue(task, {"train_examples": n_train, "train": overrides}, reason)
    if run_id is None:
        raise ConflictError(
            f"task {task!r} already has a queued or running training run", code="busy"
        )
    return run_id, n_train


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead too: reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        pass
    # Someone else's zombie (a job whose worker was killed with it, not yet reaped by init,
    # or never, in a container whose PID 1 does not reap) is dead too.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust kill(0)
    return state not in (b"Z", b"X")


@dataclass
class JobOutcome:
    run_id: int
    task: str
    returncode: int
    status: str
    version: str | None
    error: str | None


class Worker:
    def __init__(
        self,
        store: Store,
        catalogue: TaskCatalogue,
        registry: Registry,
        config: WorkerConfig,
        *,
        watch: Collection[str] | None = None,
    ) -> None:
        """``watch``: the tasks whose thresholds it acts on (default: all); queued runs of
        any task (``jarvis train``, the dashboard's "train now") are run either way."""
        self.store = store
        self.catalogue = catalogue
        self.registry = registry
        self.config = config
        self.watch = None if watch is None else frozenset(watch)

    def recover(self) -> list[int]:
        """Fail runs whose process died (kill -9, OOM, reboot); return their ids."""
        failed = []
        for run in self.store.runs.running():
            if pid_alive(run["pid"]):
                continue
            self.store.fail_run(run["id"], "interrupted: the training process died")
            if run.get("version"):
                self.registry.discard_staged(run["task"], run["version"])
            failed.append(run["id"])
        return failed

    def enqueue_due(self) -> list[int]:
        """Queue a run for every task whose policy says it is due."""
        queued = []
        for name in self.store.task_names():
            if self.watch is not None and name not in self.watch:
                continue
            try:
                self.catalogue.get(name)  # its code, or its schema (a Jac function)
            except ConfigError:
                continue  # the worker can only train tasks whose code it can load
            due = training_due(self.store, self.config.task_settings(name), name)
            if due is None:
                continue
            run_id = self.store.runs.enqueue(
                name, {"train_examples": due.train_examples}, due.reason
            )
            if run_id is not None:
                log.info("queued run %s for %s: %s", run_id, name, due.reason)
                queued.append(run_id)
        return queued

    def busy(self) -> bool:
        return any(pid_alive(r["pid"]) for r in self.store.runs.running())

    def run_job(self, run_id: int, on_line: Callable[[str], None] | None = None) -> JobOutcome:
        """Run one queued job in a subprocess and wait for it."""
        # The job's settings go in a private file rather than on its command line.
        launcher = self.config.launcher
        fd, settings_path = tempfile.mkstemp(prefix="jarvis-run-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(launcher.settings, fh)
        try:
            proc = subprocess.Popen(
                launcher.argv(run_id, settings_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            code = proc.wait()
        finally:
            os.unlink(settings_path)
        run = self.store.runs.get(run_id) or {}
        if run.get("status") in ("queued", "running"):
            # The job died before it could record its end (killed, OOM, crashed at start).
            self.store.fail_run(run_id, f"the training process exited with {code}")
            run = self.store.runs.get(run_id) or {}
        return JobOutcome(
            run_id,
            str(run.get("task")),
            code,
            str(run.get("status")),
            run.get("version"),
            run.get("error"),
        )

    def roll_back_worse(self) -> list[str]:
        """Roll back every active version that does worse than its predecessor on live
        traffic (shadow checks); return the tasks rolled back. The reason is an event."""
        rolled = []
        for name in self.store.task_names():
            reason = rollback_due(self.store, self.config.task_settings(name), name)
            if reason is None:
                continue
            active = self.store.versions.active(name)
            previous = self.registry.rollback(name)
            self.store.add_event(
                "auto_rollback",
                f"{name}: {active} rolled back to {previous or 'the teacher'}: {reason}",
                task=name,
                version=active,
                restored=previous,
            )
            log.warning("rolled back %s %s: %s", name, active, reason)
            rolled.append(name)
        return rolled

    def judge_canaries(self) -> list[tuple[str, str]]:
        """Ramp up each canary whose live agreement holds, roll back the ones that do not;
        return (task, action) for each step taken (each is an event)."""
        steps = []
        for name in self.store.task_names():
            due = canary_due(self.store, self.config.task_settings(name), name)
            if due is None:
                continue
            if due.action == "rollback":
                self.registry.abort_canary(name, due.reason)
            else:
                self.registry.ramp(name, due.reason)
            steps.append((name, due.action))
        return steps

    def step(self) -> JobOutcome | None:
        """Recover, roll back what does worse live, move canaries on, queue what is due, and
        run the oldest queued job (if no job is running)."""
        self.recover()
        self.roll_back_worse()
        self.judge_canaries()
        self.enqueue_due()
        if self.busy():
            return None
        run = self.store.runs.next_queued()
        if run is None:
            return None
        return self.run_job(run["id"])

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("worker watching %s", self.store.safe_url)
        while not stop.is_set():
            try:
                outcome = self.step()
            except Exception:  # keep watching: one bad step must not stop the loop
                log.exception("worker step failed")
                outcome = None
            if outcome is not None:
                log.info(
                    "run %s of %s: %s %s",
                    outcome.run_id,
                    outcome.task,
                    outcome.status,
                    outcome.version or outcome.error or "",
                )
            else:
                stop.wait(self.config.poll_s)


def describe_run(run: dict[str, Any]) -> str:
    p = run.get("progress", {})
    if p.get("phase") == "training" and p.get("total_steps"):
        return (
            f"step {p.get('step', 0)}/{p['total_steps']} loss {p.get('loss', float('nan')):.4f}"
            f" {p.get('examples_per_s', 0):.1f} ex/s, ETA {p.get('eta_s', 0):.0f} s"
        )
    return str(p.get("phase", run["status"]))
