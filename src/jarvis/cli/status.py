"""``jarvis tasks`` and ``jarvis status``: what tasks exist and how far each has come."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from jarvis.cli.common import handle_errors, out, print_json, runtime
from jarvis.runtime import Jarvis


def task_status(rt: Jarvis) -> list[dict[str, Any]]:
    """Per task: calls by source, fallbacks, examples by split, effective threshold, version."""
    rt.sync_tasks()
    rows = []
    for stats in rt.store.task_stats():
        row = stats.as_dict()
        row["threshold"] = rt.task_settings(stats.name).threshold  # what the worker acts on
        rows.append(row)
    return rows


def status_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The per-task status as a table (``rows`` as returned by :func:`task_status`)."""
    table = Table(title=title)
    for col in (
        "task",
        "calls",
        "teacher",
        "student",
        "fallbacks",
        "invalid",
        "train/threshold",
        "held-out",
        "active version",
    ):
        table.add_column(col, justify="left" if col in ("task", "active version") else "right")
    for r in rows:
        table.add_row(
            escape(r["name"]),
            *(
                str(r[k])
                for k in ("calls", "teacher_calls", "student_calls", "fallbacks", "invalid_calls")
            ),
            f"{r['examples_train']}/{r['threshold']}",
            str(r["examples_heldout"]),
            escape(r["active_version"] or "-"),
        )
    return table


def register(app: typer.Typer) -> None:
    app.command("tasks")(handle_errors(tasks_cmd))
    app.command("status")(handle_errors(status_cmd))


def tasks_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the declared tasks with their inputs, output type and teacher."""
    rt = runtime(ctx)
    items: list[dict[str, Any]] = []
    for name, t in sorted(rt.tasks.items()):
        items.append(
            {
                "name": name,
                "inputs": t.param_names,
                "output": getattr(t.output_type, "__name__", str(t.output_type)),
                "kind": "text" if t.is_free_text else "typed",
                "oracle": t.oracle_fn is not None,
                "instructions": t.instructions.splitlines()[0],
            }
        )
    if as_json:
        print_json({"tasks": items, "teacher": rt.teachers.describe()})
        return
    table = Table(title=f"Tasks (teacher: {rt.teachers.describe()})")
    for col in ("task", "inputs", "output", "oracle", "what it does"):
        table.add_column(col)
    for it in items:
        table.add_row(
            escape(it["name"]),
            ", ".join(it["inputs"]),
            escape(it["output"]),
            "yes" if it["oracle"] else "no",
            escape(it["instructions"]),
        )
    out.print(table)


def status_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per task: calls, teacher/student calls, fallbacks, examples, threshold, version."""
    rows = task_status(runtime(ctx))
    if as_json:
        print_json({"tasks": rows})
        return
    out.print(status_table(rows, "JARVIS status"))
