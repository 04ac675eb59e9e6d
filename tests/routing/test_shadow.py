"""Shadow checks: live student answers compared with the teacher's, and what the worker does
with falling agreement (retrain) or a version worse than its predecessor (roll back)."""

from __future__ import annotations

import json
import random

from jarvis import Jarvis, Settings, Store
from jarvis.registry import ADAPTER, version_dir
from jarvis.rpg import create_next_level, oracle_level
from jarvis.testing import ScriptedStudent
from jarvis.training.policy import rollback_due, training_due

INPUTS = {"last_levels": [], "difficulty": 1}


def student_level(time: int) -> str:
    """A valid level whose time differs from what the oracle answers (it says 300)."""
    level = oracle_level([], 1, random.Random(0)).model_copy(update={"time": time})
    return level.model_dump_json()


def shadowed(settings: Settings, store: Store, student: ScriptedStudent, rate: float) -> Jarvis:
    settings.shadow_rate = rate
    return Jarvis(settings, store=store, student=student)


def test_a_sampled_student_answer_is_compared_with_the_teacher_in_the_background(
    settings: Settings, store: Store, student: ScriptedStudent
) -> None:
    student.answers = [student_level(time=900)]
    rt = shadowed(settings, store, student, rate=1.0)
    result = rt.call(create_next_level, INPUTS)
    assert result.source == "student" and result.output.time == 900  # the caller's answer
    assert rt.shadow is not None
    rt.shadow.drain()

    [score] = store.shadows.agreements("create_next_level", "v0001", 10)
    assert score == round(6 / 7, 4)  # every field but `time` agrees
    summary = store.shadows.summary("create_next_level")
    assert summary["metric"] == "fields"
    assert summary["by_version"]["v0001"] == {"n": 1, "mean": round(6 / 7, 4)}
    # the teacher's answer is a training example like any other
    [example] = store.iter_examples("create_next_level")
    assert example["origin"] == "shadow" and example["output"]["time"] == 300


def test_no_shadow_checks_at_rate_zero(
    settings: Settings, store: Store, student: ScriptedStudent
) -> None:
    student.answers = [student_level(time=900)]
    rt = shadowed(settings, store, student, rate=0.0)
    for _ in range(5):
        rt.call(create_next_level, INPUTS)
    assert rt.shadow is not None
    rt.shadow.drain()
    assert store.shadows.agreements("create_next_level", "v0001", 10) == []


def test_a_failing_teacher_in_a_shadow_check_is_recorded_and_hurts_no_caller(
    settings: Settings, store: Store, student: ScriptedStudent
) -> None:
    student.answers = [student_level(time=900)]
    rt = shadowed(settings, store, student, rate=1.0)
    settings.teacher, settings.teacher_base_url = "openai", "http://127.0.0.1:9/v1"  # dead
    settings.teacher_max_retries, settings.teacher_timeout_s = 0, 2.0
    result = rt.call(create_next_level, INPUTS)
    assert result.valid and result.source == "student"
    assert rt.shadow is not None
    rt.shadow.drain()
    assert store.shadows.agreements("create_next_level", "v0001", 10) == []  # no score…
    assert store.shadows.summary("create_next_level")["points"] == []
    with store.engine.connect() as conn:  # …but the failure is on record
        errors = conn.exec_driver_sql("SELECT error FROM shadows").scalars().all()
    assert len(errors) == 1 and errors[0]


def _version(store: Store, name: str, parent: str | None) -> None:
    store.versions.allocate("create_next_level")
    card = {"parent": parent}
    store.versions.set_status("create_next_level", name, "candidate", card)
    store.versions.promote("create_next_level", name)


def _shadows(store: Store, version: str, score: float, n: int = 20) -> None:
    for _ in range(n):
        store.shadows.record("create_next_level", version, score, "fields")


def test_falling_live_agreement_makes_the_task_due_for_training(
    runtime: Jarvis, store: Store, settings: Settings
) -> None:
    runtime.sync_tasks()
    run_id = store.runs.enqueue("create_next_level", {"train_examples": 0}, "test")
    assert run_id is not None and store.runs.claim(run_id, pid=1)
    store.runs.finish(run_id, "succeeded")
    _version(store, "v0001", None)
    _shadows(store, "v0001", 0.95, n=10)
    assert (
        training_due(store, settings.for_task("create_next_level"), "create_next_level") is None
    )  # too few checks yet
    _shadows(store, "v0001", 0.4, n=30)
    due = training_due(store, settings.for_task("create_next_level"), "create_next_level")
    assert due is not None and "live agreement with the teacher" in due.reason


def test_a_version_worse_than_its_predecessor_on_live_traffic_is_rolled_back(
    runtime: Jarvis, store: Store, settings: Settings
) -> None:
    runtime.sync_tasks()
    _version(store, "v0001", None)
    _shadows(store, "v0001", 0.95)
    _version(store, "v0002", "v0001")
    _shadows(store, "v0002", 0.90)
    assert (
        rollback_due(store, settings.for_task("create_next_level"), "create_next_level") is None
    )  # within the margin
    _shadows(store, "v0002", 0.50, n=50)
    reason = rollback_due(store, settings.for_task("create_next_level"), "create_next_level")
    assert reason is not None and "v0001 did 95%" in reason

    assert runtime.worker().roll_back_worse() == ["create_next_level"]
    assert store.versions.active("create_next_level") == "v0001"
    [event] = store.insights.events("create_next_level", limit=1)
    assert event["kind"] == "auto_rollback" and "v0002 rolled back to v0001" in event["message"]
    assert json.dumps(event)  # the record of why is plain data


# -- canary -----------------------------------------------------------------------------------


def _canary(rt: Jarvis, name: str, share: float) -> None:
    """A version with an adapter on disk (a stand-in file: nothing loads it here), released
    as a canary."""
    store = rt.store
    store.versions.allocate("create_next_level")
    adapter = version_dir(rt.settings.models_dir, "create_next_level", name) / ADAPTER
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    store.versions.set_status("create_next_level", name, "candidate", {"parent": "v0001"})
    store.versions.start_canary("create_next_level", name, share)


def test_a_canary_that_agrees_like_the_active_version_ramps_up_to_promotion(
    runtime: Jarvis, store: Store
) -> None:
    runtime.sync_tasks()
    _version(store, "v0001", None)
    _shadows(store, "v0001", 0.95)
    _canary(runtime, "v0002", 0.25)
    worker = runtime.worker()
    assert worker.judge_canaries() == []  # no live checks of the canary yet

    _shadows(store, "v0002", 0.93)
    assert worker.judge_canaries() == [("create_next_level", "ramp")]
    canary = store.versions.canary("create_next_level")
    assert canary is not None and canary["share"] == 0.5
    assert worker.judge_canaries() == []  # a new share is judged on new checks only

    _shadows(store, "v0002", 0.96)
    assert worker.judge_canaries() == [("create_next_level", "ramp")]
    assert store.versions.active("create_next_level") == "v0002"
    kinds = [e["kind"] for e in store.insights.events("create_next_level", limit=5)]
    assert kinds[:2] == ["promoted", "canary_ramped"]


def test_a_canary_that_disagrees_on_live_traffic_is_rolled_back(
    runtime: Jarvis, store: Store
) -> None:
    runtime.sync_tasks()
    _version(store, "v0001", None)
    _shadows(store, "v0001", 0.95)
    _canary(runtime, "v0002", 0.25)
    _shadows(store, "v0002", 0.6)

    assert runtime.worker().judge_canaries() == [("create_next_level", "rollback")]

    assert store.versions.active("create_next_level") == "v0001"
    assert store.versions.canary("create_next_level") is None
    [event] = store.insights.events("create_next_level", limit=1)
    assert event["kind"] == "canary_rolled_back"
    assert "v0002 agrees 60% over 20 live checks, below v0001's 95%" in event["message"]


def test_while_a_canary_runs_both_versions_are_shadowed_at_the_canary_rate(
    settings: Settings, store: Store, student: ScriptedStudent
) -> None:
    student.answers = [student_level(time=900)]
    settings.canary_shadow_rate = 1.0
    rt = shadowed(settings, store, student, rate=0.0)
    rt.sync_tasks()
    _version(store, "v0001", None)
    _canary(rt, "v0002", 0.1)

    rt.call(create_next_level, INPUTS)  # the scripted student says v0001 answered
    assert rt.shadow is not None
    rt.shadow.drain()

    assert len(store.shadows.agreements("create_next_level", "v0001", 10)) == 1
