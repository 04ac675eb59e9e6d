"""One call, start to finish: pick a model, generate, validate, retry, fall back, log.

::

    student (if the task has an active version)
      attempt 0 greedy, then retries with rising temperature / top-p, each validated
      └─ still invalid, or the engine failed ─▶ teacher (fallback)
    teacher
      attempt 0, then (if invalid) again with the rejection reason fed back
      └─ valid answer ─▶ the answer, and a training example
    every attempt ─▶ one transaction in the store

This is the hot path: besides the model, it renders two messages, parses one answer, and
makes one database write.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jarvis.backends import (
    Backend,
    Generation,
    GenerationRequest,
    NoStudent,
    Sampling,
    StudentBackend,
    retry_sampling,
)
from jarvis.errors import AllAttemptsFailed, BackendError, TeacherError
from jarvis.prompts import render_messages, retry_feedback
from jarvis.split import RECURRING_TO_TRAIN, split_for
from jarvis.store import AttemptRecord, CallRecord, ExampleRecord, Store, TaskInfo
from jarvis.tasks import Task
from jarvis.validate import Verdict, validate_answer

if TYPE_CHECKING:
    from jarvis.shadow import ShadowChecker

Source = Literal["teacher", "student"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at answering: who answered, with what sampling, and the verdict."""

    number: int
    source: Source
    version: str | None
    model: str | None
    text: str | None
    verdict: Verdict
    sampling: Sampling
    latency_ms: float
    tokens_in: int | None = None
    tokens_out: int | None = None

    def record(self, task: Task[Any]) -> AttemptRecord:
        output = self.verdict.output
        return AttemptRecord(
            number=self.number,
            source=self.source,
            version=self.version,
            model=self.model,
            raw_text=self.text,
            output=None if output is None else task.dump_output(output),
            valid=self.verdict.valid,
            stage=self.verdict.stage,
            reason=self.verdict.reason,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            seed=self.sampling.seed,
            latency_ms=self.latency_ms,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
        )


@dataclass(slots=True)
class CallResult:
    """What a call produced, and how. ``envelope()`` is the JSON the CLI and API return."""

    task: str
    output: Any
    source: Source
    version: str | None
    attempts: list[Attempt]
    fallback: bool
    valid: bool
    reason: str | None
    latency_ms: float
    call_id: int | None = None
    output_json: Any = field(default=None)

    def envelope(self) -> dict[str, Any]:
        return {
            "output": self.output_json,
            "source": self.source,
            "version": self.version,
            "attempts": len(self.attempts),
            "fallback": self.fallback,
            "valid": self.valid,
            "reason": self.reason,
            "latency_ms": round(self.latency_ms, 3),
            "call_id": self.call_id,  # the logged call (``jarvis calls``, the dashboard)
        }


def task_info(task: Task[Any]) -> TaskInfo:
    return TaskInfo(
        name=task.name,
        kind="text" if task.is_free_text else "typed",
        instructions=task.instructions,
        output_schema=task.output_schema,
        params=task.param_names,
        threshold=task.threshold,
        heldout_share=task.heldout_share,
        origin=getattr(task, "origin", "python"),
    )


class Router:
    """Routes calls between a student and a teacher and logs everything to the store."""

    def __init__(
        self,
        store: Store,
        teacher_for: Any,
        *,
        student: StudentBackend | None = None,
        student_retries: int = 2,
        teacher_attempts: int = 2,
        max_tokens: int | None = None,
        default_heldout_share: float = 0.15,
        recurring_to_train: int = RECURRING_TO_TRAIN,
        shadow: ShadowChecker | None = None,
    ) -> None:
        self.store = store
        self.shadow = shadow
        self._teacher_for = teacher_for  # Callable[[Task], Backend]
        self.student: StudentBackend = student or NoStudent()
        self.student_retries = student_retries
        self.teacher_attempts = teacher_attempts
        self.max_tokens = max_tokens
        self.default_heldout_share = default_heldout_share
        self.recurring_to_train = recurring_to_train

    def example(
        self, task: Task[Any], input_json: Any, output_json: Any, origin: str = "teacher"
    ) -> ExampleRecord:
        """A valid teacher answer as a training example, in its train/held-out split."""
        share = task.heldout_share
        if share is None:
            share = self.default_heldout_share
        split = split_for(task.name, input_json, share)
        return ExampleRecord(
            input=input_json,
            output=output_json,
            split=split,
            origin=origin,
            train_after_seen=self.recurring_to_train,
        )

    def teacher(self, task: Task[Any]) -> Backend:
        backend: Backend = self._teacher_for(task)
        return backend

    def call(
        self, task: Task[Any], inputs: Mapping[str, Any], *, raise_on_invalid: bool = True
    ) -> CallResult:
        """Answer one call. ``inputs`` must already be validated (``task.bind``/``load_inputs``).

        Raises :class:`AllAttemptsFailed` when no attempt was valid (unless
        ``raise_on_invalid`` is false, then the result says ``valid=False``), and
        :class:`TeacherError` when the teacher could not answer at all. Both are logged first.
        """
        started = time.perf_counter()
        self.store.ensure_task(task_info(task))
        inputs = dict(inputs)
        messages = render_messages(task, inputs)
        attempts: list[Attempt] = []
        version = self.student.active_version(task.name)

        if version is not None:
            for n in range(self.student_retries + 1):
                sampling = retry_sampling(n, max_tokens=self.max_tokens)
                request = GenerationRequest(task, inputs, messages, sampling, task.output_schema)
                attempt = self._attempt(task, request, n, "student", version)
                attempts.append(attempt)
                if attempt.verdict.valid:
                    result = self._finish(task, inputs, attempts, started, fallback=False)
                    if self.shadow is not None:  # sometimes ask the teacher too, in background
                        answer = result.output_json
                        self.shadow.maybe(self, request, answer, version, result.call_id)
                    return result
                if attempt.verdict.stage == "error":
                    break  # the engine itself failed: retrying it is pointless

        try:
            teacher = self.teacher(task)
        except TeacherError as exc:  # no teacher at all: log the call (and student tries) first
            attempts.append(_error_attempt(len(attempts), "teacher", None, None, exc))
            self._finish(task, inputs, attempts, started, fallback=version is not None, error=exc)
            raise
        teacher_error: TeacherError | None = None
        convo = list(messages)
        for k in range(self.teacher_attempts):
            sampling = Sampling(max_tokens=self.max_tokens)
            request = GenerationRequest(task, inputs, convo, sampling, task.output_schema)
            try:
                attempt = self._attempt(task, request, len(attempts), "teacher", None, teacher)
            except TeacherError as exc:
                teacher_error = exc
                attempts.append(_error_attempt(len(attempts), "teacher", None, teacher, exc))
                break
            attempts.append(attempt)
            if attempt.verdict.valid:
                break
            if k + 1 < self.teacher_attempts:
                assistant = {"role": "assistant", "content": attempt.text or ""}
                convo = [*messages, assistant, retry_feedback(attempt.verdict.reason)]  # type: ignore[list-item]

        result = self._finish(
            task, inputs, attempts, started, fallback=version is not None, error=teacher_error
        )
        if teacher_error is not None:
            raise teacher_error
        if not result.valid and raise_on_invalid:
            raise AllAttemptsFailed(task.name, attempts, call_id=result.call_id)
        return result

    def _attempt(
        self,
        task: Task[Any],
        request: GenerationRequest,
        number: int,
        source: Source,
        version: str | None,
        teacher: Backend | None = None,
    ) -> Attempt:
        t0 = time.perf_counter()
        try:
            if source == "student":
                assert version is not None
                gen: Generation = self.student.generate(request, version)
            else:
                assert teacher is not None
                gen = teacher.generate(request)
        except TeacherError:
            raise
        except BackendError as exc:
            return _error_attempt(number, source, version, None, exc, request.sampling)
        latency = (time.perf_counter() - t0) * 1000
        verdict = validate_answer(task, request.inputs, gen.text, truncated=gen.finished is False)
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
        )

    def _finish(
        self,
        task: Task[Any],
        inputs: dict[str, Any],
        attempts: list[Attempt],
        started: float,
        *,
        fallback: bool,
        error: Exception | None = None,
    ) -> CallResult:
        last = attempts[-1]
        valid = last.verdict.valid
        output = last.verdict.output
        output_json = None if output is None else task.dump_output(output)
        input_json = task.dump_inputs(inputs)
        example = None
        if valid and last.source == "teacher":
            example = self.example(task, input_json, output_json)
        latency = (time.perf_counter() - started) * 1000
        record = CallRecord(
            task=task.name,
            input=input_json,
            output=output_json,
            source=last.source,
            version=last.version,
            model=last.model,
            valid=valid,
            reason=last.verdict.reason,
            fallback=fallback and last.source == "teacher",
            latency_ms=latency,
            attempts=[a.record(task) for a in attempts],
            example=example,
            error=str(error) if error else None,
        )
        call_id = self.store.record_call(record)
        return CallResult(
            task=task.name,
            output=output,
            source=last.source,
            version=last.version,
            attempts=attempts,
            fallback=record.fallback,
            valid=valid,
            reason=last.verdict.reason,
            latency_ms=latency,
            call_id=call_id,
            output_json=output_json,
        )


def _error_attempt(
    number: int,
    source: Source,
    version: str | None,
    backend: Backend | None,
    exc: Exception,
    sampling: Sampling | None = None,
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
