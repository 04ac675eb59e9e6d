"""``jarvis bench …``: benchmarks that print JARVIS next to a baseline measured in the same run."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from jarvis.cli.app import handle_errors, out, print_json

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
