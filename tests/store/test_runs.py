"""Training runs in the store: queued, claimed by exactly one worker, progress, outcome.

    queued ─▶ running ─▶ succeeded | failed

Everything runs against a real SQLite store in a temporary JARVIS_HOME.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from jarvis import Store

TASK = "create_next_level"
OTHER = "create_next_map"


@pytest.fixture
def db(store: Store) -> Store:
    """A store that knows both tasks (runs belong to a task row)."""
    store.ensure_task_name(TASK)
    store.ensure_task_name(OTHER)
    return store


def get(store: Store, run_id: int) -> dict[str, Any]:
    run = store.runs.get(run_id)
    assert run is not None, f"no run {run_id}"
    return run


def status(store: Store, run_id: int) -> str:
    return str(get(store, run_id)["status"])


def test_an_enqueued_run_is_queued_with_its_params_and_reason(db: Store) -> None:
    before = time.time()
    run_id = db.runs.enqueue(TASK, {"train_examples": 200, "train": {"epochs": 1}}, "threshold")

    assert run_id is not None
    run = db.runs.get(run_id)
    assert run is not None
    assert run["task"] == TASK
    assert run["status"] == "queued"
    assert run["params"] == {"train_examples": 200, "train": {"epochs": 1}}
    assert run["progress"] == {}
    assert run["reason"] == "threshold"
    assert run["created_at"] >= before
    assert run["started_at"] is None and run["finished_at"] is None and run["pid"] is None
    assert db.runs.get(run_id + 1) is None


def test_a_task_gets_no_second_run_while_one_is_queued_or_running(db: Store) -> None:
    first = db.runs.enqueue(TASK, {}, "first")
    assert first is not None

    assert db.runs.enqueue(TASK, {}, "while queued") is None
    assert db.runs.claim(first, pid=100)
    assert db.runs.enqueue(TASK, {}, "while running") is None
    assert db.runs.enqueue(OTHER, {}, "another task") is not None, "tasks are independent"

    db.runs.finish(first, "failed", "boom")
    assert db.runs.enqueue(TASK, {}, "after it ended") is not None
    assert [r["reason"] for r in db.runs.recent(TASK)] == ["after it ended", "first"]


def test_only_one_worker_can_claim_a_run(db: Store) -> None:
    run_id = db.runs.enqueue(TASK, {}, "test")
    assert run_id is not None

    assert db.runs.claim(run_id, pid=100) is True
    assert db.runs.claim(run_id, pid=200) is False

    run = db.runs.get(run_id)
    assert run is not None
    assert (run["status"], run["pid"]) == ("running", 100)
    assert run["started_at"] is not None
    assert [r["id"] for r in db.runs.running()] == [run_id]


def test_a_finished_or_unknown_run_cannot_be_claimed(db: Store) -> None:
    run_id = db.runs.enqueue(TASK, {}, "test")
    assert run_id is not None
    db.runs.finish(run_id, "failed", "cancelled before it started")

    assert db.runs.claim(run_id, pid=100) is False
    assert db.runs.claim(run_id + 1, pid=100) is False
    assert status(db, run_id) == "failed"


def test_progress_is_stored_and_read_back(db: Store) -> None:
    run_id = db.runs.enqueue(TASK, {}, "test")
    assert run_id is not None

    db.runs.progress(run_id, phase="training", step=3, total_steps=10, loss=0.5)
    assert get(db, run_id)["progress"] == {
        "phase": "training",
        "step": 3,
        "total_steps": 10,
        "loss": 0.5,
    }

    db.runs.progress(run_id, phase="gating", heldout=40)
    assert get(db, run_id)["progress"] == {"phase": "gating", "heldout": 40}


def test_the_version_a_run_builds_is_recorded(db: Store) -> None:
    run_id = db.runs.enqueue(TASK, {}, "test")
    assert run_id is not None

    db.runs.set_version(run_id, "v0003")

    assert get(db, run_id)["version"] == "v0003"


def test_finish_records_the_outcome_of_a_running_run(db: Store) -> None:
    ok = db.runs.enqueue(TASK, {}, "ok")
    assert ok is not None and db.runs.claim(ok, pid=1)
    db.runs.finish(ok, "succeeded")
    bad = db.runs.enqueue(TASK, {}, "bad")
    assert bad is not None and db.runs.claim(bad, pid=1)
    db.runs.finish(bad, "failed", "RuntimeError: out of memory")

    done, failed = db.runs.get(ok), db.runs.get(bad)
    assert done is not None and failed is not None
    assert (done["status"], done["error"]) == ("succeeded", None)
    assert (failed["status"], failed["error"]) == ("failed", "RuntimeError: out of memory")
    assert done["finished_at"] >= done["started_at"]
    assert db.runs.running() == []


def test_finish_never_rewrites_a_run_that_already_ended(db: Store) -> None:
    run_id = db.runs.enqueue(TASK, {}, "test")
    assert run_id is not None and db.runs.claim(run_id, pid=1)
    db.runs.finish(run_id, "succeeded")
    ended = db.runs.get(run_id)
    assert ended is not None

    db.runs.finish(run_id, "failed", "interrupted: the training process died")  # a late worker

    again = db.runs.get(run_id)
    assert again is not None
    assert (again["status"], again["error"]) == ("succeeded", None)
    assert again["finished_at"] == ended["finished_at"]


def test_the_oldest_queued_run_is_next(db: Store) -> None:
    assert db.runs.next_queued() is None
    first = db.runs.enqueue(TASK, {}, "first")
    second = db.runs.enqueue(OTHER, {}, "second")
    assert first is not None and second is not None

    nxt = db.runs.next_queued()
    assert nxt is not None and nxt["id"] == first

    assert db.runs.claim(first, pid=1)
    nxt = db.runs.next_queued()
    assert nxt is not None and nxt["id"] == second

    assert db.runs.claim(second, pid=2)
    assert db.runs.next_queued() is None


def test_last_finished_is_the_latest_run_that_ended_for_that_task(db: Store) -> None:
    assert db.runs.last_finished(TASK) is None

    first = db.runs.enqueue(TASK, {}, "first")
    assert first is not None and db.runs.claim(first, pid=1)
    db.runs.finish(first, "succeeded")
    second = db.runs.enqueue(TASK, {}, "second")
    assert second is not None and db.runs.claim(second, pid=1)
    db.runs.finish(second, "failed", "boom")
    third = db.runs.enqueue(TASK, {}, "still running")
    assert third is not None and db.runs.claim(third, pid=1)
    other = db.runs.enqueue(OTHER, {}, "other task")
    assert other is not None and db.runs.claim(other, pid=2)
    db.runs.finish(other, "succeeded")

    last = db.runs.last_finished(TASK)
    assert last is not None
    assert (last["id"], last["status"]) == (second, "failed"), "running runs are not finished"
    other_last = db.runs.last_finished(OTHER)
    assert other_last is not None and other_last["id"] == other


def test_recent_lists_newest_first_and_filters_by_task(db: Store) -> None:
    ids = []
    for task in (TASK, OTHER, TASK):
        run_id = db.runs.enqueue(task, {}, task)
        assert run_id is not None
        ids.append(run_id)
        db.runs.finish(run_id, "failed", "cancelled")

    assert [r["id"] for r in db.runs.recent()] == ids[::-1]
    assert [r["id"] for r in db.runs.recent(TASK)] == [ids[2], ids[0]]
    assert [r["id"] for r in db.runs.recent(limit=1)] == [ids[2]]
