"""A task: a typed Python function whose body is an LLM call.

The task is the unit of everything in JARVIS: its own dataset, threshold, adapters, versions
and metrics. Declaring one is a decorator on a typed function; the docstring is the
instruction, the annotations are the contract::

    @jarvis.task
    def create_next_level(last_levels: list[Level], difficulty: int) -> Level:
        \"\"\"Create the next level of the game, a bit harder than the last ones.\"\"\"

    level = create_next_level([], difficulty=1)   # goes through the router

The function body is never run. Semantic checks and an offline oracle attach to the task
with ``@create_next_level.validator`` and ``@create_next_level.oracle``. A task that returns
``str`` answers in free text; its answers must also keep its :class:`TextRules` (length, no
repetition loop), declared with ``@task(text={"max_chars": 400})``.
"""

from __future__ import annotations

import inspect
import json
import random
import re
import typing
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from jarvis.core import context
from jarvis.core.errors import TaskError
from jarvis.core.freetext import TextRules

T = TypeVar("T")

Validator = Callable[[Any, Mapping[str, Any]], "str | list[str] | None"]
"""A semantic check: ``(output, inputs) -> reason`` (or every reason) when the answer is
bad, else ``None``."""

Scorer = Callable[[Any, Any, Mapping[str, Any]], float]
"""How close an answer is to the teacher's: ``(answer, teacher_answer, inputs) -> 0..1``;
the answer *agrees* when it scores 1 (a ``bool`` works too)."""

Compare = Literal["fields", "exact", "text", "valid", "scorer"]
"""How a student's answer is compared with the teacher's (:mod:`jarvis.core.agreement`):
``fields`` (typed tasks' default: agrees when every field matches, scored by the share that
do), ``exact``, ``text`` (free text's default: chrF), ``valid`` (any valid answer is as good as
the teacher's: for tasks whose teacher is itself random), ``scorer`` (the task's own)."""

COMPARE_MODES: tuple[str, ...] = typing.get_args(Compare)

Oracle = Callable[..., Any]
"""A procedural teacher: called with the task's inputs plus ``rng=random.Random``."""

_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


def check_task_name(name: str) -> str:
    """Task names appear in URLs and directory names: keep them boring and safe."""
    if not _TASK_NAME.fullmatch(name) or ".." in name:
        raise TaskError(
            f"invalid task name {name!r}: use letters, digits, '_', '-', '.', "
            "start with a letter or '_', at most 128 characters"
        )
    return name


class Task(Generic[T]):
    """A typed LLM function. Calling it returns a validated ``T`` (or raises)."""

    def __init__(
        self,
        fn: Callable[..., T],
        *,
        name: str | None = None,
        instructions: str | None = None,
        validators: list[Validator] | None = None,
        oracle: Oracle | None = None,
        threshold: int | None = None,
        heldout_share: float | None = None,
        train: Mapping[str, Any] | None = None,
        text: TextRules | Mapping[str, Any] | None = None,
        compare: Compare | None = None,
    ) -> None:
        self.fn = fn
        self.name = check_task_name(name or fn.__name__)
        self.instructions = inspect.cleandoc(instructions or fn.__doc__ or "").strip() or (
            f"Compute the result of {self.name}."
        )
        self.validators: list[Validator] = list(validators or [])
        self.oracle_fn: Oracle | None = oracle
        self.schema_fn: Callable[..., dict[str, Any]] | None = None
        self.steering_fn: Callable[..., Any] | None = None
        self.display_fn: Callable[[Any], dict[str, Any]] | None = None
        if threshold is not None and threshold < 1:
            raise TaskError(f"task {self.name!r}: threshold must be >= 1, got {threshold}")
        if heldout_share is not None and not 0.0 <= heldout_share < 1.0:
            raise TaskError(f"task {self.name!r}: heldout_share must be in [0, 1)")
        self.threshold = threshold
        self.heldout_share = heldout_share
        # the task author's training defaults (settings keys, e.g. "train_epochs"); a user's
        # JARVIS_TASK_SETTINGS still overrides them
        self.train: dict[str, Any] = dict(train or {})

        hints = typing.get_type_hints(fn)
        if "return" not in hints:
            raise TaskError(f"task {self.name!r} needs a return type annotation")
        self.output_type: Any = hints["return"]
        self.is_free_text = self.output_type is str
        # what a free-text answer must look like (length, no loops); None for typed tasks
        self.text_rules: TextRules | None = _text_rules(self.name, text, self.is_free_text)
        self.output_adapter: TypeAdapter[Any] = TypeAdapter(self.output_type)
        if compare is not None and compare not in COMPARE_MODES:
            raise TaskError(
                f"task {self.name!r}: compare must be one of {', '.join(COMPARE_MODES)}, "
                f"got {compare!r}"
            )
        self.scorer_fn: Scorer | None = None
        self._compare: Compare | None = compare

        params = inspect.signature(fn).parameters
        fields: dict[str, Any] = {}
        for param in params.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TaskError(f"task {self.name!r}: *args/**kwargs are not supported")
            if param.name not in hints:
                raise TaskError(f"task {self.name!r}: parameter {param.name!r} needs a type")
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (hints[param.name], default)
        self.param_names: list[str] = list(fields)
        self.input_model: type[BaseModel] = create_model(
            f"{self.name}_inputs",
            __config__=ConfigDict(arbitrary_types_allowed=True, extra="forbid"),
            **fields,
        )
        self._signature = inspect.signature(fn)

    # -- calling -------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        """Answer through the runtime in use here (``jarvis.using``, else the default)."""
        result = context.current().call(self, self.bind(*args, **kwargs))
        return typing.cast(T, result.output)

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Check a call's arguments against the signature; return them by name, validated."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TaskError(f"task {self.name!r}: {exc}") from exc
        return self.load_inputs(dict(bound.arguments))

    def load_inputs(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate inputs given by name (Python objects or their JSON form)."""
        try:
            model = self.input_model.model_validate(dict(data))
        except ValidationError as exc:
            raise TaskError(f"task {self.name!r}: bad inputs: {_brief(exc)}") from exc
        return {name: getattr(model, name) for name in self.param_names}

    def dump_inputs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON form of validated inputs, as stored and exported."""
        dumped: dict[str, Any] = self.input_model(**inputs).model_dump(mode="json")
        return dumped

    def dump_output(self, output: Any) -> Any:
        """The JSON form of an output value."""
        return self.output_adapter.dump_python(output, mode="json")

    # -- schema --------------------------------------------------------------------------

    @cached_property
    def output_schema(self) -> dict[str, Any] | None:
        """JSON schema of the answer; ``None`` for free-text tasks."""
        if self.is_free_text:
            return None
        schema: dict[str, Any] = self.output_adapter.json_schema()
        return schema

    @cached_property
    def output_schema_text(self) -> str:
        return json.dumps(self.output_schema, separators=(",", ":"))

    def call_schema(self, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The answer schema for one call: the output schema, tightened by ``@t.bounds``.

        Constrained decoding enforces it, so bounds a call knows (a map's coordinates inside
        *this* level's grid) hold by construction instead of being checked after the fact.
        """
        if self.schema_fn is None:
            return self.output_schema
        return self.schema_fn(**inputs)

    # -- attaching checks and an oracle ----------------------------------------------------

    def validator(self, fn: Validator) -> Validator:
        """Decorator: add a semantic check ``(output, inputs) -> reason | None`` (a list of
        reasons when it finds several)."""
        self.validators.append(fn)
        return fn

    def oracle(self, fn: Oracle) -> Oracle:
        """Decorator: attach a procedural teacher ``(**inputs, rng) -> output``."""
        self.oracle_fn = fn
        return fn

    def bounds(self, fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        """Decorator: ``(**inputs) -> JSON schema`` of the answer to this particular call."""
        self.schema_fn = fn
        return fn

    def scorer(self, fn: Scorer) -> Scorer:
        """Register how close an answer is to the teacher's (``compare="scorer"``)."""
        self.scorer_fn = fn
        self._compare = "scorer"
        return fn

    @property
    def compare(self) -> Compare:
        """How this task's answers are compared with the teacher's (see :data:`Compare`)."""
        if self._compare is not None:
            return self._compare
        return "text" if self.is_free_text else "fields"

    def steering(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: ``(**inputs) -> steer`` whose ``allows(text)`` says whether a partial
        student answer can still become a valid one (checks a grammar cannot express)."""
        self.steering_fn = fn
        return fn

    def display(self, fn: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
        """Decorator: ``(output) -> {field: value}`` drawn beside an answer in the dashboard
        (the RPG map gives ``{"tiles": [...]}``, its tile grid). The dashboard knows no
        domain: what a task's answer looks like is the task's to say."""
        self.display_fn = fn
        return fn

    def shown(self, output_json: Any) -> dict[str, Any]:
        """What :meth:`display` adds for a stored answer (its JSON form); ``{}`` when the task
        has no display or the answer does not parse."""
        if self.display_fn is None or output_json is None:
            return {}
        try:
            return self.display_fn(self.output_adapter.validate_python(output_json))
        except ValidationError:
            return {}

    def steer(self, inputs: Mapping[str, Any]) -> Any:
        """The steer for one call, or ``None``."""
        return None if self.steering_fn is None else self.steering_fn(**inputs)

    def run_oracle(self, inputs: Mapping[str, Any], rng: random.Random) -> Any:
        if self.oracle_fn is None:
            raise TaskError(f"task {self.name!r} has no procedural oracle")
        return self.oracle_fn(**inputs, rng=rng)

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, output={getattr(self.output_type, '__name__', self.output_type)})"
        )


def _text_rules(
    name: str, declared: TextRules | Mapping[str, Any] | None, free_text: bool
) -> TextRules | None:
    if not free_text:
        if declared is not None:
            raise TaskError(f"task {name!r}: text rules apply only to tasks that return str")
        return None
    if declared is None or isinstance(declared, TextRules):
        return declared or TextRules()
    try:
        return TextRules(**dict(declared))
    except TypeError as exc:
        raise TaskError(f"task {name!r}: bad text rules: {exc}") from exc


def _brief(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "inputs"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


@overload
def task(fn: Callable[..., T], /) -> Task[T]: ...


@overload
def task(
    *,
    name: str | None = None,
    instructions: str | None = None,
    validators: list[Validator] | None = None,
    oracle: Oracle | None = None,
    threshold: int | None = None,
    heldout_share: float | None = None,
    train: Mapping[str, Any] | None = None,
    text: TextRules | Mapping[str, Any] | None = None,
    compare: Compare | None = None,
) -> Callable[[Callable[..., T]], Task[T]]: ...


def task(
    fn: Callable[..., T] | None = None,
    /,
    *,
    name: str | None = None,
    instructions: str | None = None,
    validators: list[Validator] | None = None,
    oracle: Oracle | None = None,
    threshold: int | None = None,
    heldout_share: float | None = None,
    train: Mapping[str, Any] | None = None,
    text: TextRules | Mapping[str, Any] | None = None,
    compare: Compare | None = None,
) -> Task[T] | Callable[[Callable[..., T]], Task[T]]:
    """Turn a typed function into a :class:`Task` (usable bare or with options)."""

    def wrap(f: Callable[..., T]) -> Task[T]:
        return Task(
            f,
            name=name,
            instructions=instructions,
            validators=validators,
            oracle=oracle,
            threshold=threshold,
            heldout_share=heldout_share,
            train=train,
            text=text,
            compare=compare,
        )

    return wrap(fn) if fn is not None else wrap
