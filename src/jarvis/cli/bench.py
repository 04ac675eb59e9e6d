"""``jarvis bench …``: benchmarks that print JARVIS next to a baseline measured in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jarvis.cli.app import handle_errors, out, print_json
from jarvis.errors import JarvisError

bench_app = typer.Typer(
    help="Benchmarks (each prints its baseline side by side).", no_args_is_help=True
)


@bench_app.command("router")
@handle_errors
def router_cmd(
    calls: Annotated[int, typer.Option("--calls", "-n", min=100, help="Calls per path.")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The router's overhead per call (render, validate, durable log write) vs the bare call."""
    from jarvis.benchmarks.router import run

    results = [run(calls, path) for path in ("student", "teacher")]
    if as_json:
        print_json({"router": results})
        return
    table = Table(title=f"Router overhead, {calls} calls per path, instant backend, SQLite WAL")
    for col in (
        "path",
        "bare p50",
        "bare p99",
        "router p50",
        "router p99",
        "overhead p50",
        "overhead p99",
        "target p50",
    ):
        table.add_column(col, justify="right")
    for r in results:
        ok = "[green]met[/]" if r["overhead_p50_ms"] <= r["target_p50_ms"] else "[red]missed[/]"
        table.add_row(
            r["path"],
            *(
                f"{r[k]:.3f} ms"
                for k in (
                    "bare_p50_ms",
                    "bare_p99_ms",
                    "router_p50_ms",
                    "router_p99_ms",
                    "overhead_p50_ms",
                    "overhead_p99_ms",
                )
            ),
            f"≤{r['target_p50_ms']:.0f} ms {ok}",
        )
    out.print(table)


@bench_app.command("training")
@handle_errors
def training_cmd(
    task: Annotated[str, typer.Option("--task", help="level or map.")] = "level",
    examples: Annotated[int, typer.Option("--examples", "-n", min=4)] = 300,
    probes: Annotated[
        int, typer.Option(help="Calls after promotion (levels: a game, 2 per difficulty).")
    ] = 40,
    home: Annotated[
        Path | None, typer.Option(help="JARVIS_HOME to use (default: a new temp dir).")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Override the training epochs.")] = None,
    gate_examples: Annotated[int | None, typer.Option(help="Held-out examples judged.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """From an empty home: teacher calls → threshold → train → gate → promote → student calls."""
    from jarvis.benchmarks.training import TASKS, run

    if task not in TASKS:
        raise JarvisError(f"--task must be one of {', '.join(TASKS)}")
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["train_epochs"] = epochs
    if gate_examples is not None:
        overrides["gate_examples"] = gate_examples
    say = (lambda _msg: None) if as_json else (lambda msg: out.print(msg, markup=False))
    f = run(task, examples, home, probes=probes, settings_overrides=overrides, say=say)
    train = f.card.get("train", {})
    gate = f.card.get("gate", {})
    summary = {
        "task": f.task,
        "examples": f.examples,
        "run": f.run_status,
        "version": f.version,
        "promoted": f.promoted,
        "threshold_to_active_s": f.threshold_to_active_s,
        "train_s": train.get("duration_s"),
        "steps": train.get("steps"),
        "seconds_per_step": train.get("seconds_per_step"),
        "examples_per_s": train.get("examples_per_s"),
        "peak_rss_mb": train.get("peak_rss_mb"),
        "final_loss": train.get("final_loss"),
        "gate": gate.get("candidate"),
        "verdict": gate.get("verdict"),
        "student_calls": f.student_calls,
        "student_without_fallback": f.student_without_fallback,
        "error": f.error,
    }
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"Training benchmark: {f.task}, {f.examples} teacher examples")
    table.add_column("figure")
    table.add_column("value", justify="right")
    g = gate.get("candidate") or {}
    rows = [
        ("threshold → active", _s(f.threshold_to_active_s)),
        ("training time", _s(train.get("duration_s"))),
        ("steps / s per step", f"{train.get('steps')} / {train.get('seconds_per_step')}"),
        ("examples/s", str(train.get("examples_per_s"))),
        ("peak memory of the job", f"{train.get('peak_rss_mb')} MB"),
        (
            "loss first → final",
            f"{train.get('first_loss', 0):.3f} → {train.get('final_loss', 0):.4f}",
        ),
        ("held-out examples", str(g.get("examples"))),
        ("format / semantic pass", f"{_p(g.get('format_pass'))} / {_p(g.get('semantic_pass'))}"),
        ("field agreement / exact", f"{_p(g.get('field_agreement'))} / {_p(g.get('exact_match'))}"),
        ("gate verdict", str((gate.get("verdict") or {}).get("reason"))),
        (
            "student answers w/o fallback",
            f"{f.student_without_fallback}/{f.student_calls}" if f.student_calls else "-",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"
