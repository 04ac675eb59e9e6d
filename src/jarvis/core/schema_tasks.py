"""Tasks known by a JSON schema instead of Python types.

A Jac program's ``by llm()`` function, or a task another program logged into a shared store,
has no Python declaration JARVIS can import: what it has is its name, its parameter names,
its instructions and the JSON schema of its answer (``None`` for free text). That is enough to
route, validate, train, gate and serve it, so the worker can train such a task from the store
alone (:func:`from_store_row`).

The schema should be as strict as the program's own type (:mod:`.strict_schema`), since it is
all another process has; in the process that declared the task, the program's type itself
checks every answer too (``program_type``): an answer the program would reject is invalid.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import jsonschema
from pydantic import TypeAdapter, ValidationError

from jarvis.core.backends import Backend
from jarvis.core.strict_schema import WRAPPER
from jarvis.core.tasks import Task

MAX_SCHEMA_ERRORS = 8

__all__ = ["SchemaTask", "from_store_row"]


def _signature_fn(params: Sequence[str], free_text: bool) -> Any:
    """A body-less function whose signature is ``(p1: Any, p2: Any, ...) -> str | Any``."""

    def body(**kwargs: Any) -> Any:  # never called: the LLM call is the body
        raise NotImplementedError

    returns: Any = str if free_text else Any
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=Any) for p in params],
        return_annotation=returns,
    )
    body.__annotations__ = {**{p: Any for p in params}, "return": returns}
    return body


def _schema_check(schema: dict[str, Any]) -> Any:
    """A validator: every place the answer's JSON breaks ``schema`` (``jsonschema``)."""
    checker = jsonschema.Draft202012Validator(schema)

    def follows_schema(answer: Any, inputs: Mapping[str, Any]) -> list[str] | None:
        errors = sorted(checker.iter_errors(answer), key=lambda e: list(e.absolute_path))
        found = []
        for error in errors[:MAX_SCHEMA_ERRORS]:
            where = "/".join(str(p) for p in error.absolute_path) or "answer"
            found.append(f"{where}: {error.message}")
        return found or None

    return follows_schema


def _type_check(program_type: Any, wrapped: bool) -> Any:
    """A validator: the program's own type accepts the answer (as it will parse it)."""
    adapter: TypeAdapter[Any] = TypeAdapter(program_type)

    def fits_the_program(answer: Any, inputs: Mapping[str, Any]) -> list[str] | None:
        value = answer.get(WRAPPER) if wrapped and isinstance(answer, dict) else answer
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            return [
                f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']} "
                f"(the program's type rejects {err.get('input')!r})"
                for err in exc.errors(include_url=False)[:MAX_SCHEMA_ERRORS]
            ]
        return None

    return fits_the_program


def _first_of(*checks: Any) -> Any:
    """A validator: the complaints of the first of ``checks`` that has any."""

    def check(answer: Any, inputs: Mapping[str, Any]) -> Any:
        for one in checks:
            found = one(answer, inputs)
            if found:
                return found
        return None

    check.__name__ = "follows_the_schema_and_the_program_type"
    return check


class SchemaTask(Task[Any]):
    """A task whose answer is any JSON that follows ``schema`` (free text when ``None``)."""

    origin = "schema"  # the store records it, so the worker may rebuild the task from its row

    def __init__(
        self,
        name: str,
        params: Sequence[str],
        schema: dict[str, Any] | None,
        instructions: str,
        *,
        teacher: Backend | None = None,
        threshold: int | None = None,
        heldout_share: float | None = None,
        program_type: Any = None,
    ) -> None:
        """``program_type``: the declaring program's own output type, when this process has
        it (a Jac or ``@by`` function): it checks every answer besides the schema."""
        checks = []
        if schema is not None:
            checks.append(_schema_check(schema))
            if program_type is not None:  # asked only of answers that follow the schema
                wrapped = WRAPPER in (schema.get("properties") or {})
                checks = [_first_of(checks[0], _type_check(program_type, wrapped))]
        super().__init__(
            _signature_fn(params, free_text=schema is None),
            name=name,
            instructions=instructions,
            validators=checks,
            threshold=threshold,
            heldout_share=heldout_share,
        )
        self.schema = schema
        # the model the declaring program named: the teacher when JARVIS has no LLM endpoint
        self.teacher = teacher

    @cached_property
    def output_schema(self) -> dict[str, Any] | None:
        return self.schema


def from_store_row(row: Mapping[str, Any]) -> SchemaTask | None:
    """Rebuild a task from its ``tasks`` row (None if the row does not say enough)."""
    schema = row.get("output_schema")
    if row.get("origin") != "schema":
        return None  # declared in Python: only its own code has its validators and oracle
    if row.get("kind") == "typed" and not isinstance(schema, dict):
        return None
    params = row.get("params") or []
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        return None
    return SchemaTask(
        str(row["name"]),
        params,
        schema if row.get("kind") == "typed" else None,
        str(row.get("instructions") or ""),
        threshold=row.get("threshold"),
        heldout_share=row.get("heldout_share"),
    )
