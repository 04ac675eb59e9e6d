"""Jac/byLLM: every ``by llm()`` call of an unchanged ``.jac`` program goes through JARVIS.

jaclang turns ``def f(...) -> T by llm();`` into a call of its ``call_llm(model, mt_run)``
hook, which byLLM implements by calling the model the program named. This plugin is
registered on the same hook (entry point group ``jac``) with ``tryfirst``, so it answers
first: the call becomes a call of a JARVIS task — the declared task of that name when there
is one with the same parameters (the RPG game's ``create_next_level``), otherwise a task named
``<module>.<function>`` whose answer schema is byLLM's own — and goes through the router
(teacher, or the student once promoted; validation, retries, fallback, logging). The answer is
parsed back into the program's own type by byLLM's ``parse_response``.

The teacher is the configured LLM endpoint, else the task's procedural oracle, else the model
the program named (byLLM calls it exactly as it would have). Opting out hands the call back to
byLLM: per call with ``by llm(jarvis=False)``, for a whole run with ``JARVIS_JAC=off``.

Two plugin managers are supported, told apart by what they accept rather than by version:
jaclang 0.10 (Python 3.11) vendors pluggy, whose ``hookimpl(tryfirst=True)`` orders the hook;
newer jaclang (0.16 on Python 3.12) has its own small manager with no ``tryfirst``: the plugin
registered last is asked first, and entry points register in file-system order, so this module
keeps its implementation at the end of the hook's list whatever registers after it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import importlib
import inspect
import json
import logging
import os
import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.errors import TeacherError
from jarvis.core.schema_tasks import SchemaTask
from jarvis.core.strict_schema import strict_schema
from jarvis.core.tasks import Task
from jarvis.runtime import get_default

__all__ = ["JarvisJacPlugin", "ProgramModelTeacher", "answer", "keep_first", "task_for_call"]

log = logging.getLogger(__name__)
# Each teacher request would print an httpx INFO line into the program's output (jaclang sets
# the root logger to INFO); the program's own output is not ours to fill.
for _name in ("httpx", "httpx2"):  # the openai SDK's own copy logs as "httpx2"
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)
# jaclang's own marker and manager (the same names in 0.10 and 0.16); a .jac module, so untyped.
_runtime: Any = importlib.import_module("jaclang.jac0core.runtime")

_CALL: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar(
    "jarvis_jac_call", default=None
)
_DYNAMIC: dict[tuple[str, str], SchemaTask] = {}
OFF = {"0", "off", "false", "no"}


def _first_marker() -> tuple[Callable[[Any], Any], bool]:
    """The hookimpl marker that makes ours the first implementation asked, and whether the
    plugin manager orders it (pluggy's ``tryfirst``) or this module must."""
    try:
        return _runtime.hookimpl(tryfirst=True), True  # pluggy (jaclang 0.10)
    except TypeError:  # jaclang's own manager: a bare marker, no options
        return _runtime.hookimpl, False


_FIRST, _ORDERED_BY_MANAGER = _first_marker()


class JarvisJacPlugin:
    """The plugin jaclang loads from our ``jac`` entry point."""

    @staticmethod
    @_FIRST
    def call_llm(model: Any, mt_run: Any) -> Any:
        if not wanted(mt_run):
            return None  # byLLM's own implementation answers
        return answer(model, mt_run)


def keep_first(hook_name: str = "call_llm") -> bool:
    """Without ``tryfirst`` (jaclang's own manager asks the last-registered implementation
    first): after every registration on the hook, move ours back to the end of its list, so
    byLLM answers only the calls we hand back, whichever entry point loads first."""
    caller: Any = getattr(_runtime.plugin_manager.hook, hook_name, None)
    add = getattr(caller, "_add_hookimpl", None)
    if add is None or not isinstance(getattr(caller, "_hookimpls", None), list):
        log.warning("jaclang's plugin manager is not one JARVIS knows: byLLM may answer first")
        return False
    if getattr(add, "jarvis_keeps_first", False):
        return True

    def add_keeping_ours_last(impl: Any) -> None:
        add(impl)
        impls = caller._hookimpls
        ours = [i for i in impls if getattr(i, "plugin", None) is JarvisJacPlugin]
        impls[:] = [i for i in impls if getattr(i, "plugin", None) is not JarvisJacPlugin] + ours

    add_keeping_ours_last.jarvis_keeps_first = True  # type: ignore[attr-defined]
    caller._add_hookimpl = add_keeping_ours_last
    return True


if not _ORDERED_BY_MANAGER:
    keep_first()


def wanted(mt_run: Any) -> bool:
    """Whether JARVIS should answer this call (the program did not opt out)."""
    if os.environ.get("JARVIS_JAC", "").strip().lower() in OFF:
        return False
    if (getattr(mt_run, "call_params", None) or {}).get("jarvis") is False:
        return False
    if getattr(mt_run, "tools", None):
        log.warning("a by llm() call with tools is left to byLLM (tool use is not distilled)")
        return False
    return not getattr(mt_run, "stream", False)


def answer(model: Any, mt_run: Any) -> Any:
    """Route one ``by llm()`` call through the default JARVIS runtime; return the value in
    the program's own type."""
    rt = get_default()
    task = task_for_call(rt.tasks, model, mt_run)
    inputs = {str(k): plain(v) for k, v in mt_run.mtir.args.items()}
    token = _CALL.set((model, mt_run))
    try:
        result = rt.call(task, inputs)
    finally:
        _CALL.reset(token)
    data = task.dump_output(result.output)
    if task.is_free_text:
        return mt_run.parse_response(str(data))
    return mt_run.parse_response(json.dumps(data))


def task_for_call(declared: Mapping[str, Task[Any]], model: Any, mt_run: Any) -> Task[Any]:
    """The declared task of the function's name with the same parameters, else the task made
    from the function itself (one per function, kept for the process)."""
    caller = mt_run.mtir.caller
    func = getattr(caller, "__func__", caller)  # an obj method arrives bound
    params = [str(k) for k in mt_run.mtir.args]
    same = declared.get(func.__name__)
    if same is not None and set(same.param_names) == set(params):
        return same
    name = task_name(func)
    key = (name, ",".join(params))
    task = _DYNAMIC.get(key)
    if task is None:
        wrapped = mt_run.get_output_schema()
        described = None if wrapped is None else wrapped["json_schema"]["schema"]
        program_type = return_type(func)
        # as strict as the program's own type: byLLM describes an enum only in prose
        schema = None if described is None else strict_schema(described, program_type)
        task = SchemaTask(
            name,
            params,
            schema,
            _instructions(func, mt_run),
            teacher=ProgramModelTeacher(),
            program_type=program_type if schema is not None else None,
        )
        _DYNAMIC[key] = task
    return task


def return_type(func: Any) -> Any:
    """The function's declared return type, resolved (``None`` when it cannot be)."""
    try:
        return typing.get_type_hints(func).get("return")
    except Exception:  # an annotation that does not resolve: the schema is all there is
        return None


def task_name(func: Any) -> str:
    """``<module>.<qualname>``; a program run as ``jac run x.jac`` is module ``x``."""
    module = getattr(func, "__module__", None) or ""
    if module in ("", "__main__"):
        filename = getattr(getattr(func, "__code__", None), "co_filename", "") or "main"
        module = Path(filename).stem
    raw = f"{module}.{getattr(func, '__qualname__', func.__name__)}"
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", raw).strip(".")
    return name if re.match(r"[A-Za-z_]", name) else f"jac_{name}"[:128]


def _instructions(func: Any, mt_run: Any) -> str:
    info = getattr(mt_run.mtir, "ir_info", None)
    sem = getattr(info, "semstr", None)
    return str(sem or inspect.getdoc(func) or f"Compute {func.__name__}.")


def plain(value: Any) -> Any:
    """A Jac value (objects are dataclasses) as JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


class ProgramModelTeacher:
    """The teacher a Jac program named (``glob llm = Model(...)``), called through byLLM as
    the program would have called it; the JSON of its answer is what JARVIS logs."""

    @property
    def name(self) -> str:
        current = _CALL.get()
        model = current[0] if current else None
        return f"byllm:{getattr(model, 'model_name', 'model')}"

    def generate(self, request: GenerationRequest) -> Generation:
        current = _CALL.get()
        if current is None:
            raise TeacherError(
                f"task {request.task.name!r} is answered by its Jac program's model, "
                "which is only reachable while that program makes the call"
            )
        model, mt_run = current
        try:
            value = model.invoke(mt_run=mt_run)
        except Exception as exc:  # the program's model failed: a teacher failure
            raise TeacherError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if request.task.is_free_text:
            return Generation(text=str(value), model=self.name)
        data = plain(value)
        if request.task.output_schema and "schema_object_wrapper" in (
            request.task.output_schema.get("properties") or {}
        ):
            data = {"schema_object_wrapper": data}
        return Generation(text=json.dumps(data), model=self.name)
