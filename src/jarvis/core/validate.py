"""Deciding whether a model's answer is good.

One validator serves three purposes: it decides which teacher answers become training
examples, which student answers trigger a retry or a fallback at run time, and (later) which
candidate versions pass their gate. Bad model output is *data*, never an exception: every
check returns a :class:`Verdict` carrying the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from jarvis.core.freetext import TextRules, check_text
from jarvis.core.tasks import Task


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one answer.

    ``stage`` says how far the answer got: ``"format"`` failures did not parse into the output
    type; ``"semantic"`` failures parsed but broke a rule of the domain (an unreachable enemy);
    ``"ok"`` answers passed everything. ``output`` is the parsed value whenever parsing worked,
    so a caller may still choose to use an answer that failed only its semantic checks.
    """

    valid: bool
    reason: str | None = None
    stage: str = "ok"
    output: Any = None
    problems: tuple[str, ...] = ()
    """Every broken rule found (``reason`` is them joined by "; "): all of them go back to a
    teacher asked again, not only the first."""

    @classmethod
    def ok(cls, output: Any) -> Verdict:
        return cls(valid=True, reason=None, stage="ok", output=output)

    @classmethod
    def bad_format(cls, *problems: str) -> Verdict:
        return cls(False, "; ".join(problems), "format", None, tuple(problems))

    @classmethod
    def bad_semantics(cls, problems: str | list[str], output: Any) -> Verdict:
        found = [problems] if isinstance(problems, str) else list(problems)
        return cls(False, "; ".join(found), "semantic", output, tuple(found))

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reason": self.reason}


_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def strip_code_fence(text: str) -> str:
    """Remove one surrounding Markdown code fence, which chat models like to add."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


MAX_PROBLEMS = 8
"""Type errors listed per answer at most (then "and N more")."""


def _type_errors(exc: ValidationError) -> list[str]:
    """Each place the answer does not fit the output type: ``where: what``."""
    errors = exc.errors(include_url=False)
    if not errors:
        return [str(exc)]
    found = []
    for err in errors[:MAX_PROBLEMS]:
        where = ".".join(str(part) for part in err.get("loc", ())) or "answer"
        found.append(f"{where}: {err.get('msg', 'invalid')}")
    if len(errors) > MAX_PROBLEMS:
        found.append(f"and {len(errors) - MAX_PROBLEMS} more type errors")
    return found


def validate_answer(
    task: Task[Any], inputs: Mapping[str, Any], text: str, *, truncated: bool = False
) -> Verdict:
    """Parse ``text`` into the task's output type, then run its semantic validators.

    A free-text answer must also keep its task's :class:`~jarvis.core.freetext.TextRules` (length,
    no repetition loop). ``truncated`` says the generator stopped at its token budget, which
    only the caller knows: it rejects a free-text answer, and a typed answer that does not
    parse is then reported as cut off rather than as bad JSON.
    """
    if task.is_free_text:
        answer = text.strip()
        if not answer:
            return Verdict.bad_format("empty answer")
        reason = check_text(answer, task.text_rules or TextRules(), truncated=truncated)
        if reason is not None:
            return Verdict.bad_semantics(reason, answer)
        return _run_semantic_checks(task, inputs, answer)
    body = strip_code_fence(text).strip()
    if not body:
        return Verdict.bad_format("empty answer")
    try:
        output = task.output_adapter.validate_json(body)
    except ValidationError as exc:
        if any(err.get("type") == "json_invalid" for err in exc.errors(include_url=False)):
            if truncated:
                return Verdict.bad_format(CUT_OFF)
            return Verdict.bad_format(f"not valid JSON: {_json_error(body)}")
        return Verdict.bad_format(*_type_mismatch(exc))
    return _run_semantic_checks(task, inputs, output)


CUT_OFF = "cut off at the token limit: the answer never ended"


def _type_mismatch(exc: ValidationError) -> list[str]:
    errors = _type_errors(exc)
    return [f"does not match the output type: {errors[0]}", *errors[1:]]


def validate_output(task: Task[Any], inputs: Mapping[str, Any], output: Any) -> Verdict:
    """Check an already-structured answer (a dict or an instance of the output type)."""
    if task.is_free_text:
        if not isinstance(output, str):
            return Verdict.bad_format(f"expected text, got {type(output).__name__}")
        return validate_answer(task, inputs, output)
    try:
        parsed = task.output_adapter.validate_python(output)
    except ValidationError as exc:
        return Verdict.bad_format(*_type_mismatch(exc))
    return _run_semantic_checks(task, inputs, parsed)


def _run_semantic_checks(task: Task[Any], inputs: Mapping[str, Any], output: Any) -> Verdict:
    """Every validator of the task; each one's complaint is kept."""
    problems: list[str] = []
    for check in task.validators:
        try:
            reason = check(output, inputs)
        except Exception as exc:  # a validator that crashes rejects the answer, with the cause
            reason = f"validator {getattr(check, '__name__', check)!s} failed: {exc}"
        if isinstance(reason, list):
            problems.extend(r for r in reason if r)
        elif reason:
            problems.append(reason)
    return Verdict.bad_semantics(problems, output) if problems else Verdict.ok(output)


def _json_error(body: str) -> str:
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:  # a model that opens brackets forever must not crash the judge
        return "nested too deeply"
    return "unparseable"
