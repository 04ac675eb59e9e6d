"""Importing and exporting training examples as JSONL.

Import reads two formats, line by line:

* the original system's ``llm_io_log.jsonl``: ``{"system": …, "input": …, "output": …}``,
  where ``input`` is the rendered call (function name, blank line, ``name = repr``) and
  ``output`` is JSON or a Jac/Python repr such as ``Map_tiles(level=Level(…), …)``;
* OpenAI chat fine-tuning JSONL: ``{"messages": [system?, user, assistant]}``.

Every good line is checked with the task's own validator (the one that decides what a good
teacher answer is); every bad line is reported with its number and reason; the good lines are
written in one transaction. Export writes OpenAI chat fine-tuning JSONL, rendered with the
same renderer the student sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jarvis.core.errors import ImportFileError, JarvisError
from jarvis.core.prompts import training_conversation
from jarvis.core.pyrepr import ReprError, parse_call_text, parse_value
from jarvis.core.split import split_for
from jarvis.core.tasks import Task, check_task_name
from jarvis.core.validate import validate_output
from jarvis.store.store import ExampleRecord, ImportResult, Store, TaskInfo


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ImportReport:
    lines: int = 0
    results: dict[str, ImportResult] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(r.added for r in self.results.values())

    @property
    def duplicates(self) -> int:
        return sum(r.duplicates for r in self.results.values())

    @property
    def ok(self) -> bool:
        return not self.errors


class _BadLine(Exception):
    pass


def _parse_output(text: Any, task: Task[Any] | None) -> Any:
    """The answer as JSON data: JSON text, a Jac/Python repr, or (free text) the text itself."""
    if task is not None and task.is_free_text:
        if not isinstance(text, str):
            raise _BadLine("the output of a free-text task must be a string")
        return text
    if not isinstance(text, str):
        return text  # already structured JSON
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        return parse_value(text)
    except ReprError:
        if task is None:
            return text  # an undeclared task: keep the answer as text
        raise _BadLine("output is neither JSON nor a Python/Jac literal") from None


def _split_record(obj: Any, forced_task: str | None) -> tuple[str, dict[str, Any], Any]:
    """(task name, raw args, raw output) from one decoded line of either format."""
    if not isinstance(obj, dict):
        raise _BadLine("a line must be a JSON object")
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise _BadLine("'messages' must be a list of objects")
        users = [m.get("content") for m in messages if m.get("role") == "user"]
        answers = [m.get("content") for m in messages if m.get("role") == "assistant"]
        if not users or not answers:
            raise _BadLine("'messages' needs a user and an assistant message")
        user_text, output = users[0], answers[-1]
    elif "input" in obj and "output" in obj:
        user_text, output = obj["input"], obj["output"]
    else:
        raise _BadLine("expected {'system','input','output'} or {'messages': [...]}")
    if not isinstance(user_text, str):
        raise _BadLine("the user message / input must be a string")
    try:
        func, args = parse_call_text(user_text)
    except ReprError as exc:
        if forced_task is None:
            raise _BadLine(f"cannot read the call: {exc}") from exc
        func, args = forced_task, {"input": user_text}  # free-form input of a --task import
    return forced_task or func, args, output


def _example(
    task_name: str,
    args: dict[str, Any],
    raw_output: Any,
    tasks: Mapping[str, Task[Any]],
    heldout_share: float,
) -> ExampleRecord:
    task = tasks.get(task_name)
    if task is None:
        output = _parse_output(raw_output, None)
        return ExampleRecord(
            input=args,
            output=output,
            split=split_for(task_name, args, heldout_share),
            origin="import",
        )
    # The original logged `self = …` for methods; keep only the task's own parameters.
    known = {k: v for k, v in args.items() if k in task.param_names}
    try:
        inputs = task.load_inputs(known)
    except JarvisError as exc:
        raise _BadLine(str(exc)) from exc
    output = _parse_output(raw_output, task)
    verdict = validate_output(task, inputs, output)
    if not verdict.valid:
        raise _BadLine(f"invalid output ({verdict.stage}): {verdict.reason}")
    input_json = task.dump_inputs(inputs)
    share = task.heldout_share if task.heldout_share is not None else heldout_share
    return ExampleRecord(
        input=input_json,
        output=task.dump_output(verdict.output),
        split=split_for(task.name, input_json, share),
        origin="import",
    )


def read_examples(
    lines: TextIO,
    *,
    tasks: Mapping[str, Task[Any]],
    task: str | None = None,
    heldout_share: float = 0.15,
) -> tuple[dict[str, list[ExampleRecord]], list[LineError], int]:
    """Parse every line; return the good examples per task, the bad lines, the line count."""
    if task is not None:
        check_task_name(task)
    good: dict[str, list[ExampleRecord]] = {}
    errors: list[LineError] = []
    count = 0
    for number, line in enumerate(lines, start=1):
        count = number
        if not line.strip():
            continue
        try:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _BadLine(f"not JSON: {exc.msg} at column {exc.colno}") from exc
            except RecursionError:
                raise _BadLine("not JSON: nested too deeply") from None
            name, args, raw_output = _split_record(obj, task)
            try:
                check_task_name(name)
            except JarvisError as exc:
                raise _BadLine(str(exc)) from exc
            good.setdefault(name, []).append(_example(name, args, raw_output, tasks, heldout_share))
        except _BadLine as exc:
            errors.append(LineError(number, str(exc)))
    return good, errors, count


def import_file(
    store: Store,
    path: Path,
    *,
    tasks: Mapping[str, Task[Any]],
    task: str | None = None,
    heldout_share: float = 0.15,
) -> ImportReport:
    """Import a JSONL file: good lines in one transaction, bad lines reported by number."""
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise ImportFileError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            return import_lines(store, handle, tasks=tasks, task=task, heldout_share=heldout_share)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path} is not UTF-8 text: {exc}") from exc


def import_lines(
    store: Store,
    lines: TextIO,
    *,
    tasks: Mapping[str, Task[Any]],
    task: str | None = None,
    heldout_share: float = 0.15,
) -> ImportReport:
    """Import JSONL text (a file, an upload): good lines in one transaction."""
    good, errors, count = read_examples(lines, tasks=tasks, task=task, heldout_share=heldout_share)
    for name, examples in good.items():
        declared = tasks.get(name)
        if declared is not None:
            store.ensure_task(TaskInfo.of(declared))
        else:
            kind = "text" if any(isinstance(e.output, str) for e in examples) else "typed"
            store.ensure_task_name(name, kind=kind)
    results = store.add_examples_many(good) if good else {}
    return ImportReport(lines=count, results=results, errors=errors)


def export_lines(
    store: Store, task_name: str, *, tasks: Mapping[str, Task[Any]], split: str | None
) -> Iterator[str]:
    """OpenAI chat fine-tuning lines for a task's examples (one split, or all)."""
    task = tasks.get(task_name)
    row = store.task_row(task_name)
    if row is None and task is None:
        raise JarvisError(f"unknown task {task_name!r}")
    for ex in store.iter_examples(task_name, split):
        if task is not None:
            inputs = task.load_inputs(ex["input"])
            output = task.output_adapter.validate_python(ex["output"])
            messages: list[Any] = list(training_conversation(task, inputs, output))
        else:
            messages = _generic_conversation(task_name, row or {}, ex["input"], ex["output"])
        yield json.dumps({"messages": messages}, ensure_ascii=False)


def _generic_conversation(
    name: str, row: Mapping[str, Any], inputs: Any, output: Any
) -> list[dict[str, str]]:
    """Render an undeclared task's example as faithfully as the stored data allows."""
    args = inputs if isinstance(inputs, dict) else {"input": inputs}
    user = "\n".join([name, "", *(f"{k} = {v!r}" for k, v in args.items())])
    answer = output if isinstance(output, str) else json.dumps(output, separators=(",", ":"))
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if row.get("instructions"):
        messages.insert(0, {"role": "system", "content": str(row["instructions"])})
    return messages


def export_file(
    store: Store,
    task_name: str,
    path: Path,
    *,
    tasks: Mapping[str, Task[Any]],
    split: str | None,
) -> int:
    """Write the export atomically (temp file, then rename); return the number of lines."""
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for line in export_lines(store, task_name, tasks=tasks, split=split):
                out.write(line + "\n")
                count += 1
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ImportFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return count
