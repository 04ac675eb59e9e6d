"""How a valid teacher answer becomes a training example: the split it lands in, and when a
recurring held-out input may move to training (see :mod:`jarvis.core.split`).

The router makes the examples of the calls it answers, the shadow checks those of the
teacher's second opinions: both through this one policy.
"""

from __future__ import annotations

from typing import Any

from jarvis.core.split import split_for
from jarvis.core.task_settings import TaskSettingsFor, declared_by
from jarvis.core.tasks import Task
from jarvis.store import ExampleRecord

__all__ = ["Examples"]


class Examples:
    """Training examples per task, by the task's settings (``heldout_share``,
    ``recurring_to_train``); without a resolver, the defaults and what the task declared."""

    def __init__(self, task_settings: TaskSettingsFor | None = None) -> None:
        self.task_settings = task_settings

    def make(
        self, task: Task[Any], input_json: Any, output_json: Any, origin: str = "teacher"
    ) -> ExampleRecord:
        """A valid teacher answer as a training example, in its train/held-out split."""
        ts = self.task_settings(task.name) if self.task_settings else declared_by(task)
        return ExampleRecord(
            input=input_json,
            output=output_json,
            split=split_for(task.name, input_json, ts.heldout_share),
            origin=origin,
            train_after_seen=ts.recurring_to_train,
        )
