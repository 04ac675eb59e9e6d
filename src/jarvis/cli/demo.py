"""``jarvis demo``: the main job. A scripted player runs through the game's levels.

Every level and map is a call through the router, answered by the teacher (the procedural
oracle unless an LLM endpoint is configured), validated, logged, and kept as training data.
"""

from __future__ import annotations

import statistics
from typing import Annotated, Any

import typer
from rich.markup import escape

from jarvis.cli.app import handle_errors, out, print_json, runtime
from jarvis.cli.status import status_table, task_status
from jarvis.rpg.grid import render_ascii
from jarvis.rpg.play import LevelManager


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @handle_errors
    def demo_cmd(
        ctx: typer.Context,
        levels: Annotated[int, typer.Option("--levels", "-n", min=1, max=10_000)] = 12,
        show_maps: Annotated[int, typer.Option("--show-maps", help="Maps to draw.")] = 2,
        as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Play LEVELS levels of the RPG through JARVIS and summarize what happened."""
        rt = runtime(ctx)
        if not as_json:
            teacher = escape(rt.teachers.describe())
            out.print(f"[bold]JARVIS demo[/]: {levels} levels, teacher: {teacher}")
            out.print(f"store: {rt.settings.resolved_database_url}", markup=False)
        manager = LevelManager(rt)
        latencies: dict[str, list[float]] = {"teacher": [], "student": []}
        for _ in range(levels):
            played = manager.next_level()
            for call in (played.level_call, played.map_call):
                latencies[call.source].append(call.latency_ms)
            if not as_json:
                lv = played.level
                source = played.map_call.source + (
                    f" {played.map_call.version}" if played.map_call.version else ""
                )
                out.print(
                    f"level {played.number:>3}: difficulty {lv.difficulty}, "
                    f"{lv.width}x{lv.height}, "
                    f"{lv.num_wall} walls, {lv.num_enemies} enemies, {lv.time}s  [dim]({source})[/]"
                )
                if played.number <= show_maps:
                    out.print(render_ascii(played.game_map), markup=False)
        summary: dict[str, Any] = {
            "levels": levels,
            "tasks": task_status(rt),
            "latency_p50_ms": {
                k: round(statistics.median(v), 3) if v else None for k, v in latencies.items()
            },
        }
        if as_json:
            print_json(summary)
            return
        out.print(status_table(summary["tasks"], "Summary"))
        p50 = summary["latency_p50_ms"]
        teacher_ms, student_ms = (
            "-" if p50[k] is None else f"{p50[k]} ms" for k in ("teacher", "student")
        )
        out.print(f"p50 latency per call: teacher {teacher_ms}, student {student_ms}")
