"""Worker processes for tests/store/test_concurrency.py: OS processes sharing one store.

Each worker is a spawned process (its own interpreter, its own Store and connections, as a
second JARVIS process would be) that runs the scenarios the test sends it. All workers run
a scenario at the same time: a shared barrier lines them up before each racing step.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import traceback
from collections.abc import Callable
from typing import Any

from jarvis import Store
from jarvis.store import CallRecord, ExampleRecord

TASK = "create_next_level"
BARRIER_TIMEOUT = 60.0

Barrier = multiprocessing.synchronize.Barrier
Scenario = Callable[[int, Barrier, str, Any], Any]


def example(i: int) -> ExampleRecord:
    return ExampleRecord(input={"difficulty": i}, output={"level": f"L{i}"}, split="train")


def migrate(index: int, barrier: Barrier, url: str, _: Any) -> Any:
    """Open a brand-new store at the same moment as the others: each applies the schema."""
    barrier.wait(BARRIER_TIMEOUT)
    store = Store(url)
    try:
        return sorted(store.task_names())
    finally:
        store.close()


def log_examples(index: int, barrier: Barrier, url: str, n: int) -> Any:
    """Log the same ``n`` teacher calls (same examples) as every other worker, then import
    ``n`` more examples, again the same ones as the others."""
    store = Store(url)
    try:
        store.ensure_task_name(TASK)
        barrier.wait(BARRIER_TIMEOUT)
        for i in range(n):
            ex = example(i)
            store.record_call(
                CallRecord(
                    task=TASK,
                    input=ex.input,
                    output=ex.output,
                    source="teacher",
                    version=None,
                    model=f"worker-{index}",
                    valid=True,
                    reason=None,
                    fallback=False,
                    latency_ms=1.0,
                    attempts=[],
                    example=ex,
                )
            )
        barrier.wait(BARRIER_TIMEOUT)
        result = store.add_examples(TASK, [example(i) for i in range(n, 2 * n)])
        return {"added": result.added, "duplicates": result.duplicates}
    finally:
        store.close()


def promote(index: int, barrier: Barrier, url: str, rounds: int) -> Any:
    """Promote this worker's version ``rounds`` times while the others promote theirs; after
    each promotion, read the task's versions: exactly one must be active."""
    name = f"v{index + 1:04d}"
    store = Store(url)
    seen_bad: list[Any] = []
    try:
        barrier.wait(BARRIER_TIMEOUT)
        for _ in range(rounds):
            store.versions.promote(TASK, name)
            active = [v["name"] for v in store.versions.of_task(TASK) if v["status"] == "active"]
            if len(active) != 1:
                seen_bad.append(active)
        return seen_bad
    finally:
        store.close()


def enqueue_and_claim(index: int, barrier: Barrier, url: str, rounds: int) -> Any:
    """Each round: all workers queue a run of the task at once, then all claim it at once;
    the one that claimed it finishes it, so that the next round can queue again."""
    store = Store(url)
    out = []
    try:
        for _ in range(rounds):
            barrier.wait(BARRIER_TIMEOUT)
            queued = store.runs.enqueue(TASK, {"by": index}, f"worker {index}")
            barrier.wait(BARRIER_TIMEOUT)
            run = store.runs.next_queued()
            run_id = None if run is None else int(run["id"])
            barrier.wait(BARRIER_TIMEOUT)
            claimed = run_id is not None and store.runs.claim(run_id, os.getpid())
            barrier.wait(BARRIER_TIMEOUT)
            if claimed:
                assert run_id is not None
                store.runs.finish(run_id, "succeeded")
            out.append({"queued": queued, "run": run_id, "claimed": claimed})
        return {"pid": os.getpid(), "rounds": out}
    finally:
        store.close()


SCENARIOS: dict[str, Scenario] = {
    "migrate": migrate,
    "log_examples": log_examples,
    "promote": promote,
    "enqueue_and_claim": enqueue_and_claim,
}


def serve(
    index: int,
    barrier: Barrier,
    commands: multiprocessing.Queue[Any],
    results: multiprocessing.Queue[Any],
) -> None:
    """A worker's loop: run each ``(scenario, url, arg)`` it is sent; ``None`` ends it."""
    while True:
        command = commands.get()
        if command is None:
            return
        name, url, arg = command
        try:
            results.put((index, "ok", SCENARIOS[name](index, barrier, url, arg)))
        except BaseException:
            barrier.abort()  # the others must not wait for this one until their timeout
            results.put((index, "error", traceback.format_exc()))
