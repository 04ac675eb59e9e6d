"""Several OS processes sharing one store at the same time, on SQLite and on PostgreSQL.

What must hold however their statements interleave: a new database is migrated exactly
once; the same teacher examples logged by every process are stored once; concurrent
promotions leave exactly one active version; a task gets one queued run, and one worker
claims it. The processes (``store_workers.py``) are spawned once for this module and run
each scenario together, lined up by a barrier before each racing step.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from helpers import store_workers
from helpers.store_workers import TASK
from jarvis import Store
from jarvis.store import schema
from jarvis.store.migrations import MIGRATIONS

WORKERS = 4
RESULT_TIMEOUT = 120.0


class Workers:
    """``WORKERS`` spawned processes that run a scenario all at once."""

    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.barrier = ctx.Barrier(n)
        self.results: Any = ctx.Queue()
        self.commands: list[Any] = [ctx.Queue() for _ in range(n)]
        self.processes = [
            ctx.Process(
                target=store_workers.serve,
                args=(i, self.barrier, self.commands[i], self.results),
                daemon=True,
            )
            for i in range(n)
        ]
        for process in self.processes:
            process.start()

    def run(self, scenario: str, url: str, arg: Any = None) -> list[Any]:
        """Run ``scenario`` in every worker at once; their results, by worker index."""
        self.barrier.reset()
        for queue in self.commands:
            queue.put((scenario, url, arg))
        out: list[Any] = [None] * self.n
        errors = []
        for _ in range(self.n):
            index, status, value = self.results.get(timeout=RESULT_TIMEOUT)
            if status == "ok":
                out[index] = value
            else:
                errors.append(f"worker {index}:\n{value}")
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)
        return out

    def close(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    pool = Workers(WORKERS)
    yield pool
    pool.close()


@pytest.fixture
def store(empty_url: str) -> Iterator[Store]:
    """This process's store on the shared database, which it migrates, knowing the task."""
    s = Store(empty_url)
    s.ensure_task_name(TASK)
    yield s
    s.close()


def count(store: Store, table: sa.Table, *where: Any) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(conn.execute(query).scalar_one())


def test_processes_opening_a_new_database_at_once_migrate_it_once(
    workers: Workers, empty_url: str
) -> None:
    assert workers.run("migrate", empty_url) == [[]] * WORKERS

    store = Store(empty_url, create=False)
    try:
        with store.engine.connect() as conn:
            recorded = conn.execute(sa.select(schema.schema_migrations.c.name)).scalars().all()
        assert sorted(recorded) == sorted(name for name, _ in MIGRATIONS)
        assert store.migrate() == []
    finally:
        store.close()


def test_the_same_examples_logged_by_every_process_are_stored_once(
    workers: Workers, store: Store
) -> None:
    n = 15
    imports = workers.run("log_examples", store.url, n)

    e = schema.examples
    assert count(store, schema.calls) == WORKERS * n  # every call is logged…
    assert count(store, e) == 2 * n  # …but each example once
    with store.engine.connect() as conn:
        distinct = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(e.c.input_hash, e.c.output_hash).distinct().subquery()
            )
        ).scalar_one()
    assert distinct == 2 * n
    # Each import's count of what it added is exact, even with the others inserting at once.
    assert sum(r["added"] for r in imports) == n
    assert sum(r["duplicates"] for r in imports) == (WORKERS - 1) * n


def test_concurrent_promotions_leave_exactly_one_active_version(
    workers: Workers, store: Store
) -> None:
    names = [store.versions.allocate(TASK) for _ in range(WORKERS)]
    for name in names:
        store.versions.set_status(TASK, name, "candidate", {"task": TASK, "version": name})

    seen = workers.run("promote", store.url, 8)

    assert seen == [[]] * WORKERS  # no process ever saw other than one active version
    statuses = {v["name"]: v["status"] for v in store.versions.of_task(TASK)}
    active = [name for name, status in statuses.items() if status == "active"]
    assert len(active) == 1
    assert store.versions.active(TASK) == active[0]
    assert sorted(statuses.values()) == ["active"] + ["retired"] * (WORKERS - 1)


def test_one_run_is_queued_and_exactly_one_worker_claims_it(workers: Workers, store: Store) -> None:
    rounds = 5
    results = workers.run("enqueue_and_claim", store.url, rounds)

    runs = {run["id"]: run for run in store.runs.recent(TASK)}
    assert len(runs) == rounds  # one run per round, however many processes queued one
    for r in range(rounds):
        this_round = [w["rounds"][r] for w in results]
        queued = [x["queued"] for x in this_round if x["queued"] is not None]
        assert len(queued) == 1, this_round
        assert {x["run"] for x in this_round} == {queued[0]}  # all saw that run queued
        claimants = [w["pid"] for w in results if w["rounds"][r]["claimed"]]
        assert len(claimants) == 1, this_round
        run = runs[queued[0]]
        assert (run["status"], run["pid"]) == ("succeeded", claimants[0])
