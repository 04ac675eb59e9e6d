"""``jarvis import`` and ``jarvis export``: datasets in and out, as JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from jarvis.cli.common import err, handle_errors, out, runtime
from jarvis.store.jsonl import export_file, import_file


def register(app: typer.Typer) -> None:
    app.command("import")(handle_errors(import_cmd))
    app.command("export")(handle_errors(export_cmd))


def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSONL file to import.")],
    task: Annotated[
        str | None,
        typer.Option("--task", "-t", help="Task of every line (default: from each call)."),
    ] = None,
) -> None:
    """Import training examples: the original llm_io_log.jsonl or OpenAI chat JSONL.

    Every answer is checked with the task's validator. Bad lines are reported with their
    line number and skipped; good lines are stored in one transaction. Exit status 1 if
    any line was bad.
    """
    rt = runtime(ctx)
    report = import_file(
        rt.store, file, tasks=rt.tasks, task=task, heldout_share=rt.settings.heldout_share
    )
    for error in report.errors:
        err.print(f"{file}:{error.line}: {error.reason}", markup=False)
    for name, result in sorted(report.results.items()):
        out.print(
            f"{name}: {result.added} added, {result.duplicates} duplicates skipped",
            markup=False,
        )
    out.print(
        f"{report.lines} lines read: {report.added} examples added, "
        f"{report.duplicates} duplicates, {len(report.errors)} bad lines"
    )
    if report.errors:
        raise typer.Exit(1)


def export_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task whose examples to export.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    split: Annotated[
        Literal["train", "heldout", "all"],
        typer.Option("--split", "-s", help="Which examples: train, heldout or all."),
    ] = "train",
) -> None:
    """Export a task's examples as OpenAI chat fine-tuning JSONL (one split per file)."""
    rt = runtime(ctx)
    count = export_file(
        rt.store, task, output, tasks=rt.tasks, split=None if split == "all" else split
    )
    out.print(f"wrote {count} {split} examples of {task} to {output}", markup=False)
