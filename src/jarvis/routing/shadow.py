"""Shadow checks: a sample of the calls the student answered is also sent to the teacher.

Held-out gates judge a version once, on old data; live traffic drifts. At a per-task rate
(``shadow_rate``, 0 = off), a call the student answered validly is re-asked of the teacher in
a background thread — the caller never waits — and the two answers are compared: field-level
agreement for typed tasks, chrF for free text. Each comparison is stored (``shadows``); the
worker's policy retrains on falling agreement and rolls back a version that agrees less than
its predecessor did, and ramps up or rolls back a canary (:mod:`jarvis.training.policy`).
The teacher's answer, when valid, is a
training example like any other (origin ``shadow``).

Shadowing is bounded: at most ``MAX_PENDING`` comparisons wait; more are skipped, never queued.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from jarvis.core.agreement import agreement
from jarvis.core.events import Events, StudentAnswered
from jarvis.core.task_settings import TaskSettingsFor, declared_by
from jarvis.core.validate import validate_answer
from jarvis.routing.examples import Examples
from jarvis.routing.router import TeacherFor
from jarvis.store import Store

__all__ = ["ShadowChecker"]

log = logging.getLogger(__name__)
MAX_PENDING = 16


class ShadowChecker:
    """Subscribes to the router's :class:`StudentAnswered` events (:meth:`subscribe`)."""

    def __init__(
        self,
        store: Store,
        teacher_for: TeacherFor,
        *,
        examples: Examples | None = None,
        task_settings: TaskSettingsFor | None = None,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.teacher_for = teacher_for
        self.examples = examples or Examples(task_settings)
        self.task_settings = task_settings
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._pending = 0
        self._pool: ThreadPoolExecutor | None = None
        self.skipped = 0  # comparisons dropped because too many were waiting

    def subscribe(self, events: Events) -> ShadowChecker:
        events.subscribe(StudentAnswered, self.on_student_answer)
        return self

    def on_student_answer(self, event: StudentAnswered) -> None:
        self.maybe(event)

    def rate(self, event: StudentAnswered) -> float:
        """The task's ``shadow_rate``; while a canary runs, ``canary_shadow_rate`` for both
        versions, so the two are compared on the same live traffic."""
        task = event.request.task
        ts = self.task_settings(task.name) if self.task_settings else declared_by(task)
        if ts.canary_shadow_rate > ts.shadow_rate and self.store.versions.canary(task.name):
            return ts.canary_shadow_rate
        return ts.shadow_rate

    def maybe(self, event: StudentAnswered) -> bool:
        """Sample this student-answered call for a shadow check; True if it was queued."""
        rate = self.rate(event)
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
        self._pool.submit(self._check, event)
        return True

    def _check(self, event: StudentAnswered) -> None:
        request, version, call_id = event.request, event.version, event.call_id
        task = request.task
        store = self.store
        try:
            gen = self.teacher_for(task).generate(request)
            verdict = validate_answer(task, request.inputs, gen.text)
            if not verdict.valid:
                store.shadows.record(
                    task.name, version, None, "-", call_id=call_id, error=verdict.reason
                )
                return
            teacher_json = task.dump_output(verdict.output)
            score, metric = agreement(task, event.output_json, teacher_json)
            store.shadows.record(task.name, version, round(score, 4), metric, call_id=call_id)
            input_json = task.dump_inputs(request.inputs)
            example = self.examples.make(task, input_json, teacher_json, origin="shadow")
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
