"""Shadow checks: a sample of the calls the student answered is also sent to the teacher.

Held-out gates judge a version once, on old data; live traffic drifts. At a per-task rate
(``shadow_rate``, 0 = off), a call the student answered validly is re-asked of the teacher in
a background thread — the caller never waits — and the two answers are compared: field-level
agreement for typed tasks, chrF for free text. Each comparison is stored (``shadows``); the
worker's policy retrains on falling agreement and rolls back a version that agrees less than
its predecessor did (:mod:`jarvis.training.policy`). The teacher's answer, when valid, is a
training example like any other (origin ``shadow``).

Shadowing is bounded: at most ``MAX_PENDING`` comparisons wait; more are skipped, never queued.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from jarvis.backends import GenerationRequest

if TYPE_CHECKING:
    from jarvis.config import Settings
    from jarvis.router import Router
    from jarvis.tasks import Task

__all__ = ["ShadowChecker", "agreement"]

log = logging.getLogger(__name__)
MAX_PENDING = 16


def agreement(task: Task[Any], student_json: Any, teacher_json: Any) -> tuple[float, str]:
    """How close the student's answer is to the teacher's: (score in 0..1, metric name)."""
    from jarvis.training.gate import TEXT_METRIC, field_agreement, text_scorer

    if task.is_free_text:
        return text_scorer()(str(student_json), str(teacher_json)), TEXT_METRIC
    return field_agreement(student_json, teacher_json), "fields"


class ShadowChecker:
    def __init__(self, settings: Settings, seed: int | None = None) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._pending = 0
        self._pool: ThreadPoolExecutor | None = None
        self.skipped = 0  # comparisons dropped because too many were waiting

    def rate(self, task: str) -> float:
        return float(self.settings.for_task(task, "shadow_rate"))

    def maybe(
        self,
        router: Router,
        request: GenerationRequest,
        student_json: Any,
        version: str,
        call_id: int | None,
    ) -> bool:
        """Sample this student-answered call for a shadow check; True if it was queued."""
        rate = self.rate(request.task.name)
        if rate <= 0:
            return False
        with self._lock:
            if self.rng.random() >= rate:
                return False
            if self._pending >= MAX_PENDING:
                self.skipped += 1
                return False
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")
        self._pool.submit(self._check, router, request, student_json, version, call_id)
        return True

    def _check(
        self,
        router: Router,
        request: GenerationRequest,
        student_json: Any,
        version: str,
        call_id: int | None,
    ) -> None:
        from jarvis.validate import validate_answer

        task = request.task
        store = router.store
        try:
            gen = router.teacher(task).generate(request)
            verdict = validate_answer(task, request.inputs, gen.text)
            if not verdict.valid:
                store.shadows.record(
                    task.name, version, None, "-", call_id=call_id, error=verdict.reason
                )
                return
            teacher_json = task.dump_output(verdict.output)
            score, metric = agreement(task, student_json, teacher_json)
            store.shadows.record(task.name, version, round(score, 4), metric, call_id=call_id)
            input_json = task.dump_inputs(request.inputs)
            example = router.example(task, input_json, teacher_json, origin="shadow")
            store.add_examples(task.name, [example])
        except Exception as exc:  # a shadow must never hurt serving: record and go on
            log.warning("shadow check of %s failed: %s", task.name, exc)
            try:
                store.shadows.record(
                    task.name, version, None, "-", call_id=call_id, error=f"{exc}"[:500]
                )
            except Exception:  # the store itself is down: nothing more to do here
                log.exception("cannot record a failed shadow check")
        finally:
            with self._lock:
                self._pending -= 1

    def drain(self) -> None:
        """Wait for the queued comparisons (tests, shutdown)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
