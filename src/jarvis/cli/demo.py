"""``jarvis demo``: the main job. The whole loop, live, on embedded defaults.

It starts the server with the dashboard, plays the RPG's levels on the teacher until a task
reaches its threshold, trains it (progress bar), gates and promotes it, keeps playing on the
student, prints what was saved, and keeps serving until Ctrl-C (unless ``--exit``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jarvis.cli.common import handle_errors, print_json, runtime
from jarvis.core.errors import ConfigError
from jarvis.core.extras import require_extra
from jarvis.demo.demo import Demo, PhaseStats
from jarvis.demo.play import PlayedLevel
from jarvis.rpg.grid import render_ascii
from jarvis.runtime import Jarvis, Settings
from jarvis.server import create_app
from jarvis.server.background import BackgroundServer
from jarvis.training.worker import JobOutcome

Say = Callable[..., None]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.1f} ms")


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="JARVIS demo: summary (all calls in the store)")
    for col in ("task", "calls", "student", "fallbacks", "escalated", "valid"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for col in ("agreement held-out / live", "p50 student / teacher"):
        table.add_column(col, justify="right")
    for col in ("teacher calls saved", "$ saved", "active"):
        table.add_column(col, justify="left" if col == "active" else "right")
    for r in summary["tasks"]:
        p50 = r["latency_p50_ms"]
        table.add_row(
            escape(r["name"]),
            str(r["calls"]),
            _pct(r["student_share"]),
            f"{r['fallbacks']} ({_pct(r['fallback_rate'])})",
            f"{r.get('escalations', 0)} ({_pct(r.get('escalation_rate'))})",
            _pct(r["valid_share"]),
            f"{_pct(r.get('held_out_agreement'))} / {_pct(r.get('live_agreement'))}",
            f"{_ms(p50['student'])} / {_ms(p50['teacher'])}",
            str(r["teacher_calls_saved"]),
            f"{r['cost_saved_usd']:.4f}",
            escape(r["active_version"] or "-"),
        )
    return table


def phase_table(phase: dict[str, Any]) -> Table:
    title = f"after promotion: {phase['levels']} levels in {phase['seconds']} s"
    if phase.get("new_games"):
        title += f"; new games started right: {phase['new_games_right']} of {phase['new_games']}"
    table = Table(title=title)
    columns = ("task", "calls", "student share", "fallbacks", "escalated", "valid")
    for col in (*columns, "agree with the teacher", "p50 student"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for name, t in phase["tasks"].items():
        table.add_row(
            escape(name),
            str(t["calls"]),
            _pct(t["student_share"]),
            str(t["fallbacks"]),
            str(t.get("escalated", 0)),
            _pct(t["valid_share"]),
            f"{t['agree']} of {t['calls']} ({_pct(t['agree_share'])})",
            _ms(t["latency_p50_ms"]["student"]),
        )
    return table


def _describe(run: dict[str, Any]) -> tuple[str, int, int, str]:
    p = run.get("progress") or {}
    phase = str(p.get("phase") or run.get("status") or "queued")
    total = int(p.get("total_steps") or 0)
    step = int(p.get("step") or 0)
    facts = ""
    if phase == "training" and total:
        facts = f"loss {p.get('loss', 0):.3f} · ETA {p.get('eta_s', 0):.0f} s"
    elif phase == "done":
        facts = f"{p.get('version')}: {p.get('reason')}"
    return phase, step, total, facts


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo_cmd))


def demo_cmd(
    ctx: typer.Context,
    levels: Annotated[
        int, typer.Option("--levels", "-n", min=1, help="Levels to play once trained.")
    ] = 24,
    threshold: Annotated[
        int | None,
        typer.Option(min=2, help="Training examples before training (default: settings)."),
    ] = None,
    train: Annotated[
        list[str] | None,
        typer.Option(
            "--train",
            help="Task to train (repeatable). Default: create_next_level. Adding "
            "create_next_map adds about 10 minutes on 2 cores.",
        ),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option("--base-model", help="Student base (default: settings).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default 8765; busy: any free one).")
    ] = None,
    show_maps: Annotated[int, typer.Option("--show-maps", help="Maps to draw.")] = 1,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Exit after the summary instead of serving.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Run the whole loop: teacher → dataset → training → gate → student, live."""
    require_extra("train", "the demo (it trains a student)")
    tasks = list(train or ["create_next_level"])
    _override_settings(ctx, tasks, threshold, base_model)
    rt = runtime(ctx)
    con = Console(stderr=as_json, highlight=False)
    say: Say = con.print
    host = host or rt.settings.host
    rt.sync_tasks()
    server = _start_server(create_app(rt, host=host), host, port, rt.settings.port, say)
    say(f"[bold]JARVIS demo[/] · dashboard: {server.url}/ · game: {server.url}/game")
    say(f"teacher: {escape(rt.teachers.describe())} · student base: {rt.settings.base_model}")
    say(f"store: {rt.settings.resolved_database_url}", markup=False)

    demo = Demo(rt, train=tasks, on_level=_level_printer(say, show_maps))
    try:
        _play_the_loop(rt, demo, tasks, levels, con)
    except KeyboardInterrupt:
        say("[yellow]interrupted[/]")
    summary = demo.summary()
    summary["dashboard"] = f"{server.url}/"
    if as_json:
        print_json(summary)
    else:
        student_phase = next((p for p in summary["phases"] if p["phase"] == "student"), None)
        if student_phase:
            say(phase_table(student_phase))
        say(summary_table(summary))
    if exit_after:
        server.stop()
        return
    _serve_until_interrupted(rt, server, tasks, say)


def _override_settings(
    ctx: typer.Context, tasks: list[str], threshold: int | None, base_model: str | None
) -> None:
    """The demo's options become settings of the command's runtime (before it is built)."""
    overrides: dict[str, Any] = ctx.find_root().obj.setdefault("overrides", {})
    if base_model:
        overrides["base_model"] = base_model
    if threshold is not None:
        current = Settings(**overrides).task_settings
        overrides["task_settings"] = {
            **current,
            **{t: {**current.get(t, {}), "threshold": threshold} for t in tasks},
        }


def _level_printer(say: Say, show_maps: int) -> Callable[[PhaseStats, PlayedLevel], None]:
    """Prints the first levels of each phase and every student-phase level (and a map)."""
    shown = 0

    def on_level(phase: PhaseStats, played: PlayedLevel) -> None:
        nonlocal shown
        lv = played.level
        who = " + ".join(
            c.source + (f" {c.version}" if c.version else "") + (" (fallback)" * c.fallback)
            for c in (played.level_call, played.map_call)
        )
        if phase.name == "student" or phase.levels % 25 == 0 or phase.levels <= 2:
            say(
                f"[dim]{phase.name:>8} {phase.levels:>4}[/] level {lv.name}: difficulty "
                f"{lv.difficulty}, {lv.width}x{lv.height}, {lv.num_wall} walls, "
                f"{lv.num_enemies} enemies, {lv.time}s  [dim]({escape(who)})[/]"
            )
        student_level = played.level_call.source == "student"
        if phase.name == "student" and student_level and shown < show_maps:
            shown += 1
            say(render_ascii(played.game_map), markup=False)

    return on_level


def _play_the_loop(rt: Jarvis, demo: Demo, tasks: list[str], levels: int, con: Console) -> None:
    """The three phases: teacher until the threshold, training, then the student."""
    say = con.print
    verb = "reaches" if len(tasks) == 1 else "reach"
    say(f"\n[bold]1. the teacher answers[/] until {', '.join(tasks)} {verb} the threshold")
    warm = demo.warm_up()
    say(f"   {warm.levels} levels in {warm.seconds:.1f} s")
    say("\n[bold]2. training[/] (LoRA on CPU, in its own process), gate, promotion")
    outcomes = _train_with_progress(demo, con)
    for o in outcomes:
        if o.status != "succeeded":
            say(f"[red]   run {o.run_id} of {o.task} failed:[/] {escape(o.error or '')}")
        elif rt.store.versions.active(o.task) == o.version:
            say(f"   [green]{o.task} {o.version} promoted[/]: the student answers now")
        else:
            say(f"   [yellow]{o.task} {o.version} not promoted[/] (see its gate)")
    say(f"\n[bold]3. playing on[/]: {levels} levels")
    demo.play_on(levels)


def _train_with_progress(demo: Demo, con: Console) -> list[JobOutcome]:
    """Run the queued runs, one progress bar each (steps, loss, ETA)."""
    with Progress(
        TextColumn("   {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[facts]}"),
        TimeElapsedColumn(),
        console=con,
    ) as progress:
        bars: dict[int, Any] = {}
        totals: dict[Any, int] = {}

        def on_progress(run: dict[str, Any]) -> None:
            if not run:
                return
            phase, step, total, facts = _describe(run)
            if run["id"] not in bars:
                bars[run["id"]] = progress.add_task(run["task"], total=None, facts="")
            bar = bars[run["id"]]
            steps: dict[str, Any] = {"completed": step, "total": total} if total else {}
            if total:
                totals[bar] = total
            elif phase in ("gating", "done") and bar in totals:  # training is over
                steps = {"completed": totals[bar]}
            progress.update(bar, description=f"{run['task']}: {phase}", facts=facts, **steps)

        return demo.train_queued(on_progress)


def _start_server(
    app: Any, host: str, port: int | None, default_port: int, say: Say
) -> BackgroundServer:
    try:
        return BackgroundServer(app, host, default_port if port is None else port).start()
    except ConfigError:
        if port is not None:
            raise
        say(f"[yellow]port {default_port} is busy: using a free port[/]")
        return BackgroundServer(app, host, 0).start()


def _serve_until_interrupted(
    rt: Jarvis, server: BackgroundServer, tasks: list[str], say: Say
) -> None:
    stop = threading.Event()
    worker = rt.worker(watch=tasks)
    threading.Thread(target=worker.run_forever, args=(stop,), daemon=True).start()
    say(f"\nserving on {server.url}/ (dashboard, game, API) · Ctrl-C to stop")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.stop()
        sys.stderr.write("stopped\n")
