"""Tasks known only by their JSON schema (a Jac function): routed, validated, rebuilt."""

from __future__ import annotations

import json

import pytest

from jarvis import Jarvis, Settings
from jarvis.core.errors import ConfigError
from jarvis.core.schema_tasks import SchemaTask
from jarvis.core.validate import validate_answer
from jarvis.store.store import TaskInfo

VERDICT = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "stars": {"type": "integer", "maximum": 5}},
    "required": ["label", "stars"],
    "additionalProperties": False,
}


def test_answers_are_checked_against_the_schema() -> None:
    task = SchemaTask("review.judge", ["review"], VERDICT, "Judge a review.")
    inputs = task.load_inputs({"review": "fine"})
    good = validate_answer(task, inputs, json.dumps({"label": "positive", "stars": 4}))
    assert good.valid and good.output == {"label": "positive", "stars": 4}
    bad = validate_answer(task, inputs, json.dumps({"label": "positive", "stars": 9}))
    assert not bad.valid
    assert "stars" in (bad.reason or "") and "5" in (bad.reason or "")
    assert task.output_schema == VERDICT


def test_a_schema_task_is_rebuilt_from_the_store_by_another_process(settings: Settings) -> None:
    writer = Jarvis(settings, student=None)
    task = SchemaTask("review.judge", ["review"], VERDICT, "Judge a review.")
    writer.store.ensure_task(
        TaskInfo(task.name, "typed", task.instructions, VERDICT, ["review"], origin="schema")
    )
    reader = Jarvis(settings)  # e.g. the training job: it never saw the Jac program
    rebuilt = reader.task("review.judge")
    assert isinstance(rebuilt, SchemaTask)
    assert (rebuilt.param_names, rebuilt.output_schema) == (["review"], VERDICT)


def test_a_python_task_whose_code_is_missing_is_not_rebuilt(settings: Settings) -> None:
    """Its validators and oracle live in its code: a schema-only copy would judge less."""
    rt = Jarvis(settings)
    rt.store.ensure_task(TaskInfo("somebody.elses_task", "typed", "x", VERDICT, ["review"]))
    with pytest.raises(ConfigError, match=r"unknown task 'somebody\.elses_task'"):
        Jarvis(settings).task("somebody.elses_task")


def test_the_worker_queues_a_schema_task_that_reached_its_threshold(settings: Settings) -> None:
    from jarvis.store.store import ExampleRecord

    writer = Jarvis(settings)
    info = TaskInfo("review.judge", "typed", "Judge.", VERDICT, ["review"], 3, origin="schema")
    writer.store.ensure_task(info)
    examples = [
        ExampleRecord({"review": f"review {i}"}, {"label": "positive", "stars": i % 5}, "train")
        for i in range(3)
    ]
    writer.store.add_examples("review.judge", examples)
    worker = Jarvis(settings).worker()  # a process that never ran the Jac program
    [run_id] = worker.enqueue_due()
    assert (worker.store.runs.get(run_id) or {})["task"] == "review.judge"
