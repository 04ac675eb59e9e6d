"""Feedback on a served answer: a score and/or a corrected answer, from the program or a person.

* a **score** (0 wrong .. 1 right) is logged against the version that answered: negative
  feedback shows on the dashboard and makes the worker retrain (:mod:`jarvis.training.policy`);
* a **correction** is validated like any answer (the task's type and rules) and becomes a
  training example with origin ``feedback``. Training prefers it to every other answer to the
  same input (:func:`jarvis.store.feedback.outranked`): a person who corrected the teacher
  knows better.

Nothing is recorded when anything is wrong (an unknown call, a correction that is not valid):
the caller gets a clear error and the store is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jarvis.core.errors import NotFoundError, TaskError
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.store import ExampleRecord, Store
from jarvis.store.feedback import FEEDBACK_ORIGIN

__all__ = ["FeedbackResult", "give_feedback"]


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    feedback_id: int
    call_id: int
    task: str
    version: str | None
    example_added: bool  # the correction is a new training example

    def as_dict(self) -> dict[str, Any]:
        return {
            "feedback_id": self.feedback_id,
            "call_id": self.call_id,
            "task": self.task,
            "version": self.version,
            "example_added": self.example_added,
        }


def give_feedback(
    store: Store,
    task_named: Callable[[str], Task[Any]],
    call_id: int,
    *,
    score: float | None = None,
    correction: Any = None,
    source: str = "api",
) -> FeedbackResult:
    """Record feedback on call ``call_id``. ``task_named(name)`` finds the call's task.

    Raises :class:`NotFoundError` for an unknown call and :class:`TaskError` for a score out
    of range, no score and no correction, or a correction the task's validator rejects."""
    if score is None and correction is None:
        raise TaskError("feedback needs a score (0..1), a correction, or both")
    if score is not None and not 0.0 <= score <= 1.0:
        raise TaskError(f"score must be between 0 and 1, got {score}")
    call = store.get_call(call_id)
    if call is None:
        raise NotFoundError(f"no call {call_id}")
    task: Task[Any] = task_named(call["task"])
    version = call["version"] if call["source"] == "student" else None
    example: ExampleRecord | None = None
    if correction is not None:
        inputs = task.load_inputs(call["input"])
        text = (
            correction
            if isinstance(correction, str) and task.is_free_text
            else json.dumps(correction)
        )
        verdict = validate_answer(task, inputs, text)
        if not verdict.valid:
            raise TaskError(
                f"the correction is not a valid answer of {task.name}: {verdict.reason}"
            )
        correction = task.dump_output(verdict.output)
        example = ExampleRecord(
            input=task.dump_inputs(inputs), output=correction, split="train", origin=FEEDBACK_ORIGIN
        )
    feedback_id = store.feedback.record(
        call_id, task.name, version, score=score, correction=correction, source=source
    )
    added = store.add_examples(task.name, [example]).added if example is not None else 0
    return FeedbackResult(feedback_id, call_id, task.name, version, added > 0)
