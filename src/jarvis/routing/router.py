"""One call, start to finish: pick a model, generate, validate, retry, fall back, log.

::

    student (if the task has an active version)
      attempt 0 greedy, then retries with rising temperature / top-p, each validated
      ├─ valid but less sure than its version's calibrated threshold ─▶ teacher (escalation)
      └─ still invalid, or the engine failed ─▶ teacher (fallback)
    teacher
      attempt 0, then (if invalid) again with the rejection reason fed back
      └─ valid answer ─▶ the answer, and a training example
    every attempt ─▶ one transaction in the store ─▶ an event for whoever watches

This is the hot path: besides the model, it renders two messages, parses one answer, and
makes one database write. What watches the router (shadow checks) subscribes to its
:class:`~jarvis.core.events.Events`; the router calls nothing back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jarvis.core.backends import (
    Backend,
    Generation,
    GenerationRequest,
    NoStudent,
    Sampling,
    StudentBackend,
    retry_sampling,
)
from jarvis.core.errors import AllAttemptsFailed, BackendError, TeacherError
from jarvis.core.events import Events, FellBack, StudentAnswered
from jarvis.core.prompts import ChatMessage, rejected_echo, render_messages, retry_feedback
from jarvis.core.results import Attempt, CallResult, Source
from jarvis.core.tasks import Task
from jarvis.core.validate import Verdict, validate_answer
from jarvis.routing.examples import Examples
from jarvis.store import AttemptRecord, CallRecord, Store, TaskInfo

__all__ = ["Router", "RouterConfig", "TeacherFor"]

TeacherFor = Callable[[Task[Any]], Backend]
"""Which teacher answers a task (raises :class:`TeacherError` when there is none)."""

ThresholdFor = Callable[[str, str], "float | None"]
"""A version's confidence threshold, ``(task, version) -> threshold`` (None: no cascade)."""


@dataclass(frozen=True)
class RouterConfig:
    student_retries: int = 2
    """Retries after a bad student answer, before falling back to the teacher."""
    teacher_attempts: int = 2
    """Attempts per call; later ones are told why the last failed."""
    max_tokens: int | None = None
    """Token budget of one answer (the student's is capped nearer its longest answer)."""


@dataclass(slots=True)
class _Call:
    """One call in progress: what was asked, and every attempt so far."""

    task: Task[Any]
    inputs: dict[str, Any]
    messages: list[ChatMessage]
    started: float
    version: str | None  # the student version asked first, if any
    attempts: list[Attempt]
    escalated: bool = False  # the student answered validly but not surely enough


class Router:
    """Routes calls between a student and a teacher and logs everything to the store."""

    def __init__(
        self,
        store: Store,
        teacher_for: TeacherFor,
        *,
        student: StudentBackend | None = None,
        config: RouterConfig | None = None,
        examples: Examples | None = None,
        events: Events | None = None,
        threshold_for: ThresholdFor | None = None,
    ) -> None:
        self.store = store
        self.teacher = teacher_for
        self.student: StudentBackend = student or NoStudent()
        self.config = config or RouterConfig()
        self.examples = examples or Examples()
        self.events = events or Events()
        self.threshold_for = threshold_for

    def call(
        self, task: Task[Any], inputs: Mapping[str, Any], *, raise_on_invalid: bool = True
    ) -> CallResult:
        """Answer one call. ``inputs`` must already be validated (``task.bind``/``load_inputs``).

        Raises :class:`AllAttemptsFailed` when no attempt was valid (unless
        ``raise_on_invalid`` is false, then the result says ``valid=False``), and
        :class:`TeacherError` when the teacher could not answer at all. Both are logged first.
        """
        self.store.ensure_task(TaskInfo.of(task))
        call = _Call(
            task=task,
            inputs=dict(inputs),
            messages=render_messages(task, inputs),
            started=time.perf_counter(),
            version=self.student.active_version(task.name),
            attempts=[],
        )
        if call.version is not None:
            served = self._ask_student(call)
            if served is not None:
                return served
        result = self._ask_teacher(call)
        if not result.valid and raise_on_invalid:
            raise AllAttemptsFailed(task.name, call.attempts, call_id=result.call_id)
        return result

    # -- the two sides ------------------------------------------------------------------------

    def _ask_student(self, call: _Call) -> CallResult | None:
        """The student's attempts: greedy first, then sampling that really changes. Returns
        the result when one was valid, else ``None`` (the teacher takes over)."""
        assert call.version is not None
        for n in range(self.config.student_retries + 1):
            sampling = retry_sampling(n, max_tokens=self.config.max_tokens)
            request = self._request(call, call.messages, sampling)
            attempt = self._attempt(call, request, "student", self._student_answer(call))
            call.attempts.append(attempt)
            if attempt.verdict.valid and self._unsure(call, attempt):
                call.escalated = True  # right shape, but the student doubts it: ask the teacher
                return None
            if attempt.verdict.valid:
                result = self._finish(call)
                self.events.emit(
                    StudentAnswered(request, result.output_json, call.version, result.call_id)
                )
                return result
            if attempt.verdict.stage == "error":
                break  # the engine itself failed: retrying it is pointless
        return None

    def _unsure(self, call: _Call, attempt: Attempt) -> bool:
        """Is this valid answer less sure than its version's calibrated threshold?"""
        if self.threshold_for is None or attempt.confidence is None or call.version is None:
            return False
        threshold = self.threshold_for(call.task.name, call.version)
        return threshold is not None and attempt.confidence < threshold

    def teacher_answer(self, task: Task[Any], inputs: Mapping[str, Any]) -> Any:
        """The teacher's valid answer to ``inputs`` (JSON form), or None: a second opinion for
        measuring agreement, not logged and not a training example."""
        teacher = self.teacher(task)
        messages = render_messages(task, inputs)
        for k in range(self.config.teacher_attempts):
            sampling = _teacher_sampling(k, self.config.max_tokens)
            gen = teacher.generate(
                GenerationRequest(task, dict(inputs), messages, sampling, task.output_schema)
            )
            verdict = validate_answer(task, inputs, gen.text, truncated=gen.finished is False)
            if verdict.valid:
                return task.dump_output(verdict.output)
        return None

    def _ask_teacher(self, call: _Call) -> CallResult:
        """The teacher's attempts, each told why the one before was rejected."""
        try:
            teacher = self.teacher(call.task)
        except TeacherError as exc:  # no teacher at all: log the call (and student tries) first
            call.attempts.append(_error_attempt(len(call.attempts), "teacher", None, exc))
            if call.escalated:
                return self._serve_doubted(call, exc)
            self._finish(call, error=exc)
            raise
        convo = list(call.messages)
        error: TeacherError | None = None
        for k in range(self.config.teacher_attempts):
            request = self._request(call, convo, _teacher_sampling(k, self.config.max_tokens))
            try:
                attempt = self._attempt(call, request, "teacher", teacher.generate)
            except TeacherError as exc:
                error = exc
                call.attempts.append(_error_attempt(len(call.attempts), "teacher", teacher, exc))
                break
            call.attempts.append(attempt)
            if attempt.verdict.valid:
                break
            if k + 1 < self.config.teacher_attempts:
                verdict = attempt.verdict
                feedback = retry_feedback(list(verdict.problems) or verdict.reason)
                convo = [*call.messages, rejected_echo(attempt.text), feedback]
        if call.escalated and not call.attempts[-1].verdict.valid:
            return self._serve_doubted(call, error)
        result = self._finish(call, error=error)
        if call.version is not None and not call.escalated:
            self.events.emit(
                FellBack(call.task, call.inputs, call.version, result.reason, result.call_id)
            )
        if error is not None:
            raise error
        return result

    def _serve_doubted(self, call: _Call, error: Exception | None) -> CallResult:
        """An escalation the teacher could not answer: the student's valid answer is still
        better than none, so it is served (and logged with the teacher's failure)."""
        doubted = next(a for a in reversed(call.attempts) if a.verdict.valid)
        assert call.version is not None
        result = self._finish(call, answer=doubted, error=error)
        self.events.emit(
            StudentAnswered(
                self._request(call, call.messages, doubted.sampling),
                result.output_json,
                call.version,
                result.call_id,
            )
        )
        return result

    # -- one attempt --------------------------------------------------------------------------

    def _request(
        self, call: _Call, messages: list[ChatMessage], sampling: Sampling
    ) -> GenerationRequest:
        return GenerationRequest(
            call.task, call.inputs, messages, sampling, call.task.output_schema
        )

    def _student_answer(self, call: _Call) -> Callable[[GenerationRequest], Generation]:
        version = call.version
        assert version is not None
        return lambda request: self.student.generate(request, version)

    def _attempt(
        self,
        call: _Call,
        request: GenerationRequest,
        source: Source,
        generate: Callable[[GenerationRequest], Generation],
    ) -> Attempt:
        """Generate and judge one answer. A student backend's failure is an invalid attempt;
        a teacher's is raised (:class:`TeacherError`)."""
        number = len(call.attempts)
        version = call.version if source == "student" else None
        t0 = time.perf_counter()
        try:
            gen = generate(request)
        except TeacherError:
            raise
        except BackendError as exc:
            return _error_attempt(number, source, None, exc, request.sampling, version)
        latency = (time.perf_counter() - t0) * 1000
        verdict = validate_answer(
            call.task, request.inputs, gen.text, truncated=gen.finished is False
        )
        return Attempt(
            number=number,
            source=source,
            version=version,
            model=gen.model,
            text=gen.text,
            verdict=verdict,
            sampling=request.sampling,
            latency_ms=latency,
            tokens_in=gen.tokens_in,
            tokens_out=gen.tokens_out,
            confidence=gen.confidence,
        )

    # -- logging ------------------------------------------------------------------------------

    def _finish(
        self, call: _Call, *, error: Exception | None = None, answer: Attempt | None = None
    ) -> CallResult:
        """Log the call with its attempts (and its example, if the teacher's answer was
        valid) in one transaction; return what the caller gets: ``answer``, else the last
        attempt."""
        task, last = call.task, answer or call.attempts[-1]
        valid = last.verdict.valid
        output = last.verdict.output
        output_json = None if output is None else task.dump_output(output)
        input_json = task.dump_inputs(call.inputs)
        example = None
        if valid and last.source == "teacher":
            example = self.examples.make(task, input_json, output_json)
        latency = (time.perf_counter() - call.started) * 1000
        student_tries = [a for a in call.attempts if a.source == "student"]
        confidence = student_tries[-1].confidence if student_tries else None
        record = CallRecord(
            task=task.name,
            input=input_json,
            output=output_json,
            source=last.source,
            version=last.version,
            model=last.model,
            valid=valid,
            reason=last.verdict.reason,
            fallback=call.version is not None and last.source == "teacher" and not call.escalated,
            # (an escalation the teacher could not answer is served by the student)
            latency_ms=latency,
            attempts=[_attempt_record(task, a) for a in call.attempts],
            example=example,
            error=str(error) if error else None,
            escalated=call.escalated,
            confidence=confidence,
        )
        call_id = self.store.record_call(record)
        return CallResult(
            task=task.name,
            output=output,
            source=last.source,
            version=last.version,
            attempts=call.attempts,
            fallback=record.fallback,
            valid=valid,
            reason=last.verdict.reason,
            latency_ms=latency,
            call_id=call_id,
            output_json=output_json,
            escalated=call.escalated,
        )


def _teacher_sampling(attempt: int, max_tokens: int | None) -> Sampling:
    """The teacher's first answer with the endpoint's own sampling; a retry samples more
    widely with a new seed, as the student's do, or a deterministic server would repeat the
    very answer that was rejected."""
    if attempt == 0:
        return Sampling(max_tokens=max_tokens)
    return retry_sampling(attempt, max_tokens=max_tokens)


def _attempt_record(task: Task[Any], a: Attempt) -> AttemptRecord:
    output = a.verdict.output
    return AttemptRecord(
        number=a.number,
        source=a.source,
        version=a.version,
        model=a.model,
        raw_text=a.text,
        output=None if output is None else task.dump_output(output),
        valid=a.verdict.valid,
        stage=a.verdict.stage,
        reason=a.verdict.reason,
        temperature=a.sampling.temperature,
        top_p=a.sampling.top_p,
        seed=a.sampling.seed,
        latency_ms=a.latency_ms,
        tokens_in=a.tokens_in,
        tokens_out=a.tokens_out,
        confidence=a.confidence,
    )


def _error_attempt(
    number: int,
    source: Source,
    backend: Backend | None,
    exc: Exception,
    sampling: Sampling | None = None,
    version: str | None = None,
) -> Attempt:
    return Attempt(
        number=number,
        source=source,
        version=version,
        model=backend.name if backend is not None else None,
        text=None,
        verdict=Verdict(valid=False, reason=str(exc), stage="error"),
        sampling=sampling or Sampling(),
        latency_ms=0.0,
    )
