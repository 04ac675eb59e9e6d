"""When a task should be (re)trained.

* first training: the task has at least ``threshold`` training examples and no version;
* cumulative retraining: ``retrain_every`` new training examples since the last run started
  (the new run trains on all of them, old and new);
* drift: the student's recent fallback rate exceeds ``fallback_limit`` over a full window of
  ``fallback_window`` student calls since the last run, or its live agreement with the
  teacher (shadow checks, :mod:`jarvis.routing.shadow`) falls below ``shadow_floor``;
* feedback: the active version got ``feedback_min`` negative feedback (a low score or a
  correction, :mod:`jarvis.routing.feedback`) since the last run.

And when a version should be rolled back (:func:`rollback_due`): its live agreement is below
its predecessor's by more than ``shadow_rollback_margin``; and what to do with a canary
(:func:`canary_due`): ramp it up while its live agreement holds, roll it back when it does not.

A failed run is not retried at once: only after more data arrives or a cool-down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from jarvis.core.task_settings import TaskSettings
from jarvis.store import Store

RETRY_FAILED_AFTER_S = 600.0


@dataclass(frozen=True)
class Due:
    task: str
    reason: str
    train_examples: int


def training_due(store: Store, ts: TaskSettings, task: str, now: float | None = None) -> Due | None:
    """Why ``task`` (whose settings are ``ts``) should be trained now, or None."""
    now = time.time() if now is None else now
    threshold = ts.threshold
    every = ts.retrain_every
    n_train = store.example_count(task, "train")
    last = store.runs.last_finished(task)
    ever_built = any(
        v["status"] not in ("building", "failed") for v in store.versions.of_task(task)
    )
    if last is None or not ever_built:
        if n_train < threshold:
            return None
        if last is not None and last["status"] == "failed":
            grew = n_train - int(last["params"].get("train_examples", 0)) >= every
            cooled = now - (last["finished_at"] or 0) >= RETRY_FAILED_AFTER_S
            if not (grew or cooled):
                return None
        return Due(task, f"threshold reached ({n_train} ≥ {threshold} training examples)", n_train)
    new = n_train - int(last["params"].get("train_examples", 0))
    if new >= every:
        return Due(task, f"{new} new training examples since run {last['id']}", n_train)
    if last["status"] == "failed" and now - (last["finished_at"] or 0) < RETRY_FAILED_AFTER_S:
        return None  # drift alone must not retry a failed run at once (a crash loop)
    window = ts.fallback_window
    limit = ts.fallback_limit
    calls, fallbacks = store.student_routed_calls(task, last["started_at"] or 0.0, window)
    if calls >= window and fallbacks / calls > limit:
        return Due(
            task,
            f"fallback rate {fallbacks / calls:.0%} > {limit:.0%} "
            f"over the last {calls} student calls",
            n_train,
        )
    active = store.versions.active(task)
    if active is not None:
        bad = store.feedback.negative(task, active, since=last["started_at"] or 0.0)
        if bad >= ts.feedback_min:
            return Due(task, f"{bad} negative feedback on {active} since run {last['id']}", n_train)
        live = _live(store, ts, task, active, since=last["started_at"] or 0.0)
        floor = ts.shadow_floor
        if live is not None and live[1] < floor:
            return Due(
                task,
                f"live agreement with the teacher {live[1]:.0%} < {floor:.0%} "
                f"over the last {live[0]} shadow checks",
                n_train,
            )
    return None


def _live(
    store: Store, ts: TaskSettings, task: str, version: str, since: float = 0.0
) -> tuple[int, float] | None:
    """(checks, mean agreement) of ``version``'s recent shadow checks, if there are enough."""
    found = store.shadows.agreements(task, version, ts.shadow_window, since)
    if len(found) < ts.shadow_min:
        return None
    return len(found), sum(found) / len(found)


def rollback_due(store: Store, ts: TaskSettings, task: str) -> str | None:
    """Why the active version should give way to the one it replaced, or None."""
    active = store.versions.active(task)
    if active is None:
        return None
    card = (store.versions.get(task, active) or {}).get("card") or {}
    parent = card.get("parent")
    if not parent:
        return None
    mine = _live(store, ts, task, active)
    theirs = _live(store, ts, task, parent)
    if mine is None or theirs is None:
        return None
    margin = ts.shadow_rollback_margin
    if mine[1] < theirs[1] - margin:
        return (
            f"{active} agrees with the teacher on live traffic {mine[1]:.0%} of the time "
            f"({mine[0]} shadow checks), {parent} did {theirs[1]:.0%} ({theirs[0]}): "
            f"worse by more than {margin:.0%}"
        )
    return None


@dataclass(frozen=True)
class CanaryStep:
    action: str  # "ramp" or "rollback"
    reason: str


def canary_due(store: Store, ts: TaskSettings, task: str) -> CanaryStep | None:
    """What the task's canary has earned since its share last changed, or None (no canary,
    or not enough shadow checks yet): "rollback" when its live agreement is below the active
    version's by more than ``shadow_rollback_margin`` (below ``shadow_floor`` when the
    active version has too few checks), else "ramp"."""
    canary = store.versions.canary(task)
    if canary is None:
        return None
    mine = _live(store, ts, task, canary["version"], since=canary["since"])
    if mine is None:
        return None
    active = store.versions.active(task)
    theirs = _live(store, ts, task, active) if active is not None else None
    bar = theirs[1] - ts.shadow_rollback_margin if theirs is not None else ts.shadow_floor
    against = f"{active}'s {theirs[1]:.0%}" if theirs is not None else "the floor"
    facts = f"{canary['version']} agrees {mine[1]:.0%} over {mine[0]} live checks"
    if mine[1] < bar:
        return CanaryStep("rollback", f"{facts}, below {against} by more than the margin")
    return CanaryStep("ramp", f"{facts} (vs {against})")
