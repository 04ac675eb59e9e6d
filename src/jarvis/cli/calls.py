"""``jarvis call``, ``check`` and ``calls``: make a call, judge an answer, list calls."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from jarvis.cli.common import handle_errors, out, parse_json_option, print_json, runtime
from jarvis.core.errors import JarvisError
from jarvis.core.validate import validate_output


def register(app: typer.Typer) -> None:
    app.command("call")(handle_errors(call_cmd))
    app.command("check")(handle_errors(check_cmd))
    app.command("calls")(handle_errors(calls_cmd))
    app.command("feedback")(handle_errors(feedback_cmd))


def call_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name, e.g. create_next_level.")],
    input_json: Annotated[
        str, typer.Option("--input", "-i", help="Inputs as a JSON object (or @file).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the envelope: output, source, attempts…")
    ] = False,
) -> None:
    """Run one call through the router and print the answer (exit 1 if it is invalid)."""
    rt = runtime(ctx)
    inputs = parse_json_option(input_json, "--input")
    if not isinstance(inputs, dict):
        raise JarvisError("--input must be a JSON object of the task's arguments")
    result = rt.call(task, inputs, raise_on_invalid=False)
    if as_json:
        print_json(result.envelope())
    else:
        print_json(result.output_json)
    if not result.valid:
        raise typer.Exit(1)


def check_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name.")],
    input_json: Annotated[str, typer.Option("--input", "-i", help="Inputs JSON (or @file).")],
    output_json: Annotated[
        str, typer.Option("--output", "-o", help="The answer to judge, JSON (or @file).")
    ],
) -> None:
    """Judge an answer with the task's validator: prints {"valid", "reason"}; exit 0 or 1."""
    rt = runtime(ctx)
    t = rt.task(task)
    inputs = parse_json_option(input_json, "--input")
    if not isinstance(inputs, dict):
        raise JarvisError("--input must be a JSON object of the task's arguments")
    verdict = validate_output(t, t.load_inputs(inputs), parse_json_option(output_json, "--output"))
    print_json(verdict.as_dict())
    if not verdict.valid:
        raise typer.Exit(1)


def calls_cmd(
    ctx: typer.Context,
    task: Annotated[str | None, typer.Argument(help="Only this task.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the most recent calls, newest first."""
    rt = runtime(ctx)
    rows = rt.store.recent_calls(task, limit)
    if as_json:
        print_json({"calls": rows})
        return
    table = Table(title=f"Recent calls{f' of {task}' if task else ''}")
    for col in (
        "id",
        "time",
        "task",
        "source",
        "version",
        "attempts",
        "valid",
        "fallback",
        "ms",
        "reason",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        when = dt.datetime.fromtimestamp(r["created_at"]).strftime("%H:%M:%S")
        table.add_row(
            str(r["id"]),
            when,
            escape(r["task"]),
            r["source"],
            escape(r["version"] or "-"),
            str(r["attempts"]),
            "yes" if r["valid"] else "[red]no[/]",
            "yes" if r["fallback"] else ("escalated" if r.get("escalated") else ""),
            f"{r['latency_ms']:.1f}",
            escape(r["reason"] or ""),
        )
    out.print(table)


def feedback_cmd(
    ctx: typer.Context,
    call_id: Annotated[int, typer.Argument(help="The call's id (jarvis calls).", min=1)],
    score: Annotated[
        float | None, typer.Option("--score", "-s", min=0.0, max=1.0, help="0 wrong .. 1 right.")
    ] = None,
    correction: Annotated[
        str | None,
        typer.Option("--correction", "-c", help="The right answer, JSON (or @file)."),
    ] = None,
    source: Annotated[str, typer.Option("--source", help="Who says so.")] = "cli",
) -> None:
    """Say how good a served answer was: a score and/or the right answer (a training example
    that outranks the teacher's)."""
    rt = runtime(ctx)
    fixed = None if correction is None else parse_json_option(correction, "--correction")
    print_json(rt.feedback(call_id, score=score, correction=fixed, source=source).as_dict())
