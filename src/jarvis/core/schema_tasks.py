"""Tasks known by a JSON schema instead of Python types.

A Jac program's ``by llm()`` function, or a task another program logged into a shared store,
has no Python declaration JARVIS can import: what it has is its name, its parameter names,
its instructions and the JSON schema of its answer (``None`` for free text). That is enough to
route, validate, train, gate and serve it, so the worker can train such a task from the store
alone (:func:`from_store_row`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import jsonschema

from jarvis.core.backends import Backend
from jarvis.core.tasks import Task

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
    """A validator that checks the answer's JSON against ``schema`` (``jsonschema``)."""
    checker = jsonschema.Draft202012Validator(schema)

    def follows_schema(answer: Any, inputs: Mapping[str, Any]) -> str | None:
        error = next(iter(checker.iter_errors(answer)), None)
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "answer"
        return f"{where}: {error.message}"

    return follows_schema


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
    ) -> None:
        check = _schema_check(schema) if schema is not None else None
        super().__init__(
            _signature_fn(params, free_text=schema is None),
            name=name,
            instructions=instructions,
            validators=[check] if check is not None else None,
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
