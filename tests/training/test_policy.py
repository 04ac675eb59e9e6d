"""When a task is due for (re)training, against a real store.

* first training once the task has ``threshold`` training examples;
* retraining after ``retrain_every`` new training examples since the last run;
* retraining when the student falls back to the teacher too often over a full window of calls;
* a failed run is retried only after more data or a cool-down, never at once.

Runs and versions are created through the store's own API, the way the worker and the
training job create them. Times are passed in as ``now`` instead of waiting.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from jarvis import Settings, Store, task
from jarvis.store import CallRecord, ExampleRecord
from jarvis.training.policy import RETRY_FAILED_AFTER_S, training_due

TASK = "t"
_unique = itertools.count()


# -- helpers ----------------------------------------------------------------------------------


def make_settings(home: Path, **values: Any) -> Settings:
    """Small numbers, so a test needs a handful of rows rather than hundreds."""
    defaults: dict[str, Any] = {
        "threshold": 5,
        "retrain_every": 4,
        "fallback_window": 10,
        "fallback_limit": 0.2,
    }
    return Settings(home=home, teacher_seed=7, **{**defaults, **values})


@pytest.fixture
def small(home: Path) -> Settings:
    return make_settings(home)


@pytest.fixture
def db(store: Store) -> Store:
    store.ensure_task_name(TASK)
    return store


def add_train(store: Store, n: int, split: str = "train") -> None:
    """Add ``n`` distinct examples (the store skips exact duplicates)."""
    rows = []
    for _ in range(n):
        i = next(_unique)
        rows.append(ExampleRecord(input={"i": i}, output={"o": i}, split=split))
    assert store.add_examples(TASK, rows).added == n


def finished_run(store: Store, status: str = "succeeded") -> dict[str, Any]:
    """A run that trained on every training example there is now, and ended with ``status``."""
    n_train = store.example_count(TASK, "train")
    run_id = store.runs.enqueue(TASK, {"train_examples": n_train}, "test")
    assert run_id is not None
    assert store.runs.claim(run_id, pid=1234)
    store.runs.finish(run_id, status, None if status == "succeeded" else "boom")
    run = store.runs.get(run_id)
    assert run is not None
    return run


def trained_version(store: Store, status: str = "active") -> dict[str, Any]:
    """A succeeded run that built a version now in ``status``; returns the run."""
    run = finished_run(store)
    name = store.versions.allocate(TASK)
    store.versions.set_status(TASK, name, status)
    return run


def record_call(store: Store, *, fallback: bool, at: float) -> None:
    """A student-routed call: the student answered, or failed and the teacher took over."""
    store.record_call(
        CallRecord(
            task=TASK,
            input={"q": next(_unique)},
            output={"a": 1},
            source="teacher" if fallback else "student",
            version="v0001",
            model=None,
            valid=True,
            reason=None,
            fallback=fallback,
            latency_ms=1.0,
            attempts=[],
            created_at=at,
        )
    )


def record_calls(store: Store, *, ok: int, fallbacks: int, after: float) -> None:
    for i in range(fallbacks):
        record_call(store, fallback=True, at=after + 1 + i)
    for i in range(ok):
        record_call(store, fallback=False, at=after + 1 + fallbacks + i)


# -- first training ---------------------------------------------------------------------------


def test_a_task_below_its_threshold_is_not_due(db: Store, small: Settings) -> None:
    add_train(db, 4)
    add_train(db, 10, split="heldout")  # held-out examples are never trained on

    assert training_due(db, small.for_task(TASK), TASK) is None


def test_a_task_that_reaches_its_threshold_is_due(db: Store, small: Settings) -> None:
    add_train(db, 5)

    due = training_due(db, small.for_task(TASK), TASK)

    assert due is not None
    assert due.task == TASK
    assert due.train_examples == 5
    assert "threshold reached" in due.reason
    assert "5 ≥ 5" in due.reason


def test_task_settings_override_the_threshold_of_one_task(db: Store, home: Path) -> None:
    settings = make_settings(home, threshold=100, task_settings={TASK: {"threshold": 3}})
    add_train(db, 3)

    due = training_due(db, settings.for_task(TASK), TASK)

    assert due is not None and "3 ≥ 3" in due.reason
    assert training_due(db, make_settings(home, threshold=100).for_task(TASK), TASK) is None


def test_a_declared_task_brings_its_own_threshold(db: Store, home: Path) -> None:
    @task(name=TASK, threshold=3)
    def summarize(text: str) -> str:
        """Summarize the text."""

    settings = make_settings(home, threshold=100)
    add_train(db, 3)

    assert training_due(db, settings.for_task(TASK), TASK) is None, "the global default: 100"
    due = training_due(db, settings.for_task(TASK, summarize), TASK)
    assert due is not None and "3 ≥ 3" in due.reason

    overridden = make_settings(home, task_settings={TASK: {"threshold": 4}})
    assert training_due(db, overridden.for_task(TASK, summarize), TASK) is None, "settings win"


# -- retraining on new data -------------------------------------------------------------------


@pytest.mark.parametrize("status", ["active", "candidate", "rejected", "retired"])
def test_after_a_version_is_built_retraining_waits_for_retrain_every_new_examples(
    db: Store, small: Settings, status: str
) -> None:
    add_train(db, 6)
    run = trained_version(db, status)

    assert training_due(db, small.for_task(TASK), TASK) is None, "nothing new since the run"
    add_train(db, 3)
    assert training_due(db, small.for_task(TASK), TASK) is None, "3 new < retrain_every 4"
    add_train(db, 1)

    due = training_due(db, small.for_task(TASK), TASK)

    assert due is not None
    assert due.train_examples == 10, "the new run trains on old and new examples"
    assert due.reason == f"4 new training examples since run {run['id']}"


def test_a_version_that_failed_to_build_does_not_count_as_built(db: Store, small: Settings) -> None:
    add_train(db, 6)
    finished_run(db)
    name = db.versions.allocate(TASK)
    db.versions.fail_if_building(TASK, name)

    due = training_due(db, small.for_task(TASK), TASK, now=time.time() + RETRY_FAILED_AFTER_S)

    assert due is not None and "threshold reached" in due.reason


# -- failed runs ------------------------------------------------------------------------------


def test_a_failed_first_run_is_retried_after_the_cool_down(db: Store, small: Settings) -> None:
    add_train(db, 5)
    run = finished_run(db, "failed")
    ended = run["finished_at"]

    assert training_due(db, small.for_task(TASK), TASK, now=ended + 1) is None, "not at once"
    assert (
        training_due(db, small.for_task(TASK), TASK, now=ended + RETRY_FAILED_AFTER_S - 1) is None
    )
    due = training_due(db, small.for_task(TASK), TASK, now=ended + RETRY_FAILED_AFTER_S)
    assert due is not None and "threshold reached" in due.reason


def test_a_failed_first_run_is_retried_when_enough_new_data_arrives(
    db: Store, small: Settings
) -> None:
    add_train(db, 5)
    ended = finished_run(db, "failed")["finished_at"]

    add_train(db, 3)
    assert training_due(db, small.for_task(TASK), TASK, now=ended + 1) is None, (
        "3 new < retrain_every 4"
    )
    add_train(db, 1)
    assert training_due(db, small.for_task(TASK), TASK, now=ended + 1) is not None


def test_a_failed_retraining_is_not_retried_at_once_for_a_high_fallback_rate(
    db: Store, small: Settings
) -> None:
    add_train(db, 6)
    trained_version(db)
    failed = finished_run(db, "failed")  # e.g. the drift-triggered retraining crashed
    record_calls(db, ok=0, fallbacks=10, after=failed["started_at"])
    ended = failed["finished_at"]

    assert training_due(db, small.for_task(TASK), TASK, now=ended + 1) is None, "not in a loop"
    due = training_due(db, small.for_task(TASK), TASK, now=ended + RETRY_FAILED_AFTER_S)
    assert due is not None and "fallback rate" in due.reason


# -- retraining on drift ----------------------------------------------------------------------


def test_too_many_fallbacks_over_a_full_window_make_a_task_due(db: Store, small: Settings) -> None:
    add_train(db, 6)
    run = trained_version(db)
    record_calls(db, ok=7, fallbacks=3, after=run["started_at"])  # 30% > 20%

    due = training_due(db, small.for_task(TASK), TASK)

    assert due is not None
    assert due.reason == "fallback rate 30% > 20% over the last 10 student calls"


def test_a_fallback_rate_at_the_limit_is_not_drift(db: Store, small: Settings) -> None:
    add_train(db, 6)
    run = trained_version(db)
    record_calls(db, ok=8, fallbacks=2, after=run["started_at"])  # exactly 20%

    assert training_due(db, small.for_task(TASK), TASK) is None


def test_fewer_calls_than_the_window_are_not_judged(db: Store, small: Settings) -> None:
    add_train(db, 6)
    run = trained_version(db)
    record_calls(db, ok=0, fallbacks=9, after=run["started_at"])  # 100%, but 9 < 10

    assert training_due(db, small.for_task(TASK), TASK) is None


def test_only_the_most_recent_window_of_calls_is_judged(db: Store, small: Settings) -> None:
    add_train(db, 6)
    run = trained_version(db)
    record_calls(db, ok=10, fallbacks=10, after=run["started_at"])  # fallbacks came first

    assert training_due(db, small.for_task(TASK), TASK) is None


def test_calls_from_before_the_last_run_started_are_not_judged(db: Store, small: Settings) -> None:
    add_train(db, 6)
    run = trained_version(db)
    record_calls(db, ok=0, fallbacks=10, after=run["started_at"] - 100)

    assert training_due(db, small.for_task(TASK), TASK) is None


def test_teacher_calls_without_a_student_attempt_are_not_judged(db: Store, small: Settings) -> None:
    add_train(db, 6)
    run = trained_version(db)
    record_calls(db, ok=7, fallbacks=3, after=run["started_at"])
    for i in range(10):  # later plain teacher calls (no student tried) must not dilute it
        db.record_call(
            CallRecord(
                task=TASK,
                input={"teacher": i},
                output={"a": 1},
                source="teacher",
                version=None,
                model=None,
                valid=True,
                reason=None,
                fallback=False,
                latency_ms=1.0,
                attempts=[],
                created_at=run["started_at"] + 100 + i,
            )
        )

    assert db.student_routed_calls(TASK, run["started_at"], 10) == (10, 3)
    due = training_due(db, small.for_task(TASK), TASK)
    assert due is not None and "fallback rate 30%" in due.reason


# -- feedback ---------------------------------------------------------------------------------


def test_negative_feedback_on_the_active_version_makes_a_task_due(db: Store, home: Path) -> None:
    settings = make_settings(home, feedback_min=3)
    add_train(db, 6)
    run = trained_version(db, status="candidate")
    active = db.versions.of_task(TASK)[-1]["name"]
    db.versions.promote(TASK, active)
    record_calls(db, ok=3, fallbacks=0, after=run["started_at"])
    calls = [c["id"] for c in db.recent_calls(TASK)]
    db.feedback.record(calls[0], TASK, active, score=1.0)  # praise does not count
    db.feedback.record(calls[1], TASK, active, score=0.0)
    db.feedback.record(calls[2], TASK, active, score=None, correction={"a": 2})
    assert training_due(db, settings.for_task(TASK), TASK) is None

    db.feedback.record(calls[2], TASK, active, score=0.1)

    due = training_due(db, settings.for_task(TASK), TASK)
    assert (
        due is not None and due.reason == f"3 negative feedback on {active} since run {run['id']}"
    )
