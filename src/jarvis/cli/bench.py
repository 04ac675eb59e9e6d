"""``jarvis bench …``: benchmarks that print JARVIS next to a baseline measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jarvis.benchmarks import load, quality, router, serving, teacher, training
from jarvis.cli.common import err, handle_errors, out, print_json
from jarvis.core.errors import JarvisError

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
    results = [router.run(calls, path) for path in ("student", "teacher")]
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
    if task not in training.TASKS:
        raise JarvisError(f"--task must be one of {', '.join(training.TASKS)}")
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["train_epochs"] = epochs
    if gate_examples is not None:
        overrides["gate_examples"] = gate_examples
    say = (lambda _msg: None) if as_json else (lambda msg: out.print(msg, markup=False))
    f = training.run(task, examples, home, probes=probes, settings_overrides=overrides, say=say)
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


@bench_app.command("quality")
@handle_errors
def quality_cmd(
    task: Annotated[str, typer.Option("--task", help="level or map.")] = "level",
    examples: Annotated[int, typer.Option("--examples", "-n", min=4)] = 300,
    sample: Annotated[int, typer.Option("--sample", min=2, help="Game-like calls asked.")] = 100,
    cold_starts: Annotated[
        int, typer.Option("--cold-starts", min=1, help="New games asked, difficulty 1 to N.")
    ] = 20,
    home: Annotated[
        Path | None, typer.Option(help="JARVIS_HOME to use (default: a new temp dir).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A setting for this run, NAME=JSON (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Agreement with the teacher, validity-only routing vs the confidence cascade, side by
    side: from an empty home, the teacher's examples, training, then game-like, unseen and
    new-game calls asked in both modes."""
    if task not in training.TASKS:
        raise JarvisError(f"--task must be one of {', '.join(training.TASKS)}")
    overrides: dict[str, Any] = {}
    for item in set_ or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise JarvisError(f"--set takes NAME=JSON, got {item!r}")
        try:
            overrides[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name.strip()] = value
    say = (
        (lambda msg: err.print(msg, markup=False))
        if as_json
        else (lambda msg: out.print(msg, markup=False))
    )
    f = quality.run(
        task, examples, sample, home, cold_starts, settings_overrides=overrides, say=say
    )
    if as_json:
        print_json(f.as_dict())
        return
    t = f.training
    out.print(
        f"{f.task}: {examples} teacher examples → {t['version']} "
        f"({'promoted' if t['promoted'] else 'not promoted'}) in {_s(t['threshold_to_active_s'])}"
        f"; held-out agreement {_p(t['gate'].get('agreement'))}, "
        f"confidence threshold {t['confidence_threshold']}"
    )
    table = Table(title=f"Quality benchmark: {f.task} (served answers vs the teacher's)")
    for col in ("sample", "routing", "calls", "student share", "student agrees", "all agree"):
        table.add_column(col, justify="left" if col in ("sample", "routing") else "right")
    for col in ("escalated", "fallbacks", "teacher calls saved", "p50"):
        table.add_column(col, justify="right")
    for name, modes in f.samples.items():
        for mode, m in modes.items():
            table.add_row(
                name,
                mode,
                str(m["calls"]),
                _p(m["student_share"]),
                _p(m["student_agreement"]),
                _p(m["served_agreement"]),
                str(m["escalated"]),
                str(m["fallbacks"]),
                str(m["teacher_calls_saved"]),
                "-" if m["latency_p50_ms"] is None else f"{m['latency_p50_ms']:.0f} ms",
            )
    out.print(table)
    for mode, level in f.new_game_level_1.items():
        verdict = "right" if level["right"] else f"wrong: {level['answer']}"
        out.print(f"new game, level 1 ({mode}): {level['source']}, {verdict}")


@bench_app.command("serving")
@handle_errors
def serving_cmd(
    home: Annotated[Path, typer.Option(help="A JARVIS_HOME with an active version of the task.")],
    task: Annotated[str, typer.Option(help="level or map.")] = "level",
    latency_prompts: Annotated[int, typer.Option(help="Prompts for the baseline timing.")] = 10,
    quality_prompts: Annotated[int, typer.Option(help="Prompts per engine mode.")] = 200,
    http_calls: Annotated[int, typer.Option(help="Calls per HTTP measurement.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The engine (grammar, jump-forward) vs plain transformers generate; HTTP latency."""
    if task not in ("level", "map"):
        raise JarvisError("--task must be level or map")
    figures = serving.run_serving_benchmark(
        home,
        task,
        latency_prompts=latency_prompts,
        quality_prompts=quality_prompts,
        http_calls=http_calls,
        say=lambda msg: err.print(f"[dim]{msg}[/dim]"),  # stdout stays clean for --json
    )
    data = figures.as_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title=f"{data['task']}@{data['version']}: one call at a time, this CPU")
    for col in (
        "mode",
        "calls",
        "parse",
        "semantic",
        "p50",
        "p95",
        "TTFT p50",
        "tokens",
        "sampled",
    ):
        table.add_column(col, justify="right")
    base = data["modes"][0]["mean_s"]
    for m in data["modes"]:
        table.add_row(
            m["mode"],
            str(m["calls"]),
            _p(m["parse_rate"]),
            _p(m["semantic_rate"]),
            _ms(m["p50_s"]),
            _ms(m["p95_s"]),
            _ms(m["ttft_p50_s"]),
            f"{m['tokens_per_answer']:.0f}",
            _p(m["sampled_share"]),
        )
    out.print(table)
    engine = data["modes"][1]["mean_s"]
    if base and engine:
        out.print(
            f"whole answer, mean: baseline {base:.2f} s, engine {engine:.3f} s: "
            f"{base / engine:.1f}x faster"
        )
    http = Table(title=f"/v1/tasks/{data['task']}/call through a live server")
    for col in (
        "answered by",
        "p50",
        "p95",
        "student share",
        "req/s, 1 client",
        "req/s, 8 clients",
    ):
        http.add_column(col, justify="right")
    for label, h in data["http"].items():
        http.add_row(
            label,
            f"{h['p50_ms']:.1f} ms",
            f"{h['p95_ms']:.1f} ms",
            _p(h["student_share"]),
            f"{h['rps_1_client']:.2f}",
            f"{h['rps_8_clients']:.2f}",
        )
    out.print(http)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{1000 * x:.0f} ms"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


@bench_app.command("load")
@handle_errors
def load_cmd(
    clients: Annotated[
        list[int] | None,
        typer.Option("--clients", "-c", min=1, max=512, help="Concurrent clients (repeatable)."),
    ] = None,
    seconds: Annotated[float, typer.Option("--seconds", "-s", min=1, max=3600)] = 20.0,
    invalid_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of student answers corrupted.")
    ] = 0.1,
    student: Annotated[
        str, typer.Option(help="oracle (stand-in, measures the stack) or engine (--home).")
    ] = "oracle",
    home: Annotated[
        Path | None, typer.Option(help="JARVIS_HOME with active versions (student=engine).")
    ] = None,
    database_url: Annotated[
        list[str] | None,
        typer.Option(
            "--database-url",
            help="A store to run against (repeatable: results side by side); 'sqlite' is a "
            "fresh SQLite file.",
        ),
    ] = None,
    batch_size: Annotated[
        list[int] | None,
        typer.Option(
            "--batch-size",
            min=1,
            help="The engine's JARVIS_BATCH_SIZE (repeatable; 1 is the serial baseline, "
            "compared side by side with each other size).",
        ),
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            help="Call only this RPG task (repeatable; default both): one task is one adapter.",
        ),
    ] = None,
    max_requests: Annotated[int, typer.Option(min=1)] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Concurrent clients on the RPG tasks over HTTP for a fixed time; then reconcile every
    answer with its logged call (nothing lost, nothing twice)."""
    if student not in ("oracle", "engine"):
        raise JarvisError(f"--student must be oracle or engine, not {student!r}")
    if student == "engine" and home is None:
        raise JarvisError("--student engine needs --home with active versions")
    tasks = tuple(task or load.TASKS)
    unknown = sorted(set(tasks) - set(load.TASKS))
    if unknown:
        raise JarvisError(f"--task: {', '.join(unknown)} is not one of {', '.join(load.TASKS)}")
    results = []
    for url in database_url or ["sqlite"]:
        for n in clients or [32]:
            sizes: list[int | None] = list(batch_size) if batch_size else [None]
            for size in sizes:
                cfg = load.LoadConfig(
                    clients=n,
                    seconds=seconds,
                    invalid_rate=invalid_rate,
                    student=student,
                    home=home,
                    database_url=None if url == "sqlite" else url,
                    max_requests=max_requests,
                    batch_size=size,
                    tasks=tasks,
                )
                batch = "" if size is None else f", batch size {size}"
                err.print(f"load: {n} clients, {seconds:.0f} s, store {url}{batch} …")
                results.append(load.run(cfg))
    if as_json:
        print_json({"load": results, "ratios": load.ratios(results)})
        return
    table = Table(
        title=f"Load: {seconds:.0f} s per run over HTTP, {' and '.join(tasks)}, student "
        f"{student} with {invalid_rate:.0%} of its answers corrupted"
    )
    for column in (
        "store",
        "clients",
        "batch",
        "answered",
        "req/s",
        "p50 / p95 / p99",
        "errors",
        "rows: student / fallback / teacher",
        "lost / twice / unanswered rows",
    ):
        table.add_column(column, justify="left" if column == "store" else "right")
    for r in results:
        x = r["reconciliation"]
        table.add_row(
            r["backend"],
            str(r["clients"]),
            "-" if r["batch_size"] is None else str(r["batch_size"]),
            str(r["answered"]),
            str(r["throughput_rps"]),
            _lat(r["latency_ms"]),
            str(r["errors"]),
            _src(r["rows_by_source"]),
            f"{x['answered_without_row']} / {x['answered_twice']} / {x['rows_without_answer']}",
        )
    out.print(table)
    ratios = load.ratios(results)
    if ratios:
        versus = Table(title="Batched ÷ serial (batch size 1), same clients, same run")
        for column in ("store", "clients", "batch", "throughput ×", "p50 ×", "p95 ×", "p99 ×"):
            versus.add_column(column, justify="right")
        for q in ratios:
            versus.add_row(
                q["backend"],
                str(q["clients"]),
                str(q["batch_size"]),
                *(_x(q[k]) for k in ("throughput", "p50", "p95", "p99")),
            )
        out.print(versus)
    if student == "engine":
        _print_passes(results)


def _print_passes(results: list[dict[str, Any]]) -> None:
    """Where the engine's time went in each run: what its forward passes carried and cost."""
    passes = Table(title="The engine's forward passes (from the server's /metrics)")
    keys = {
        "answers / pass": "answers_per_pass",
        "tokens / pass": "tokens_per_pass",
        "ms / pass": "ms_per_pass",
        "ms / token": "ms_per_token",
        "in passes (share of wall)": "forward_share_of_wall",
        "CPU cores busy": "cpu_cores_busy",
    }
    for column in ("clients", "batch", *keys):
        passes.add_column(column, justify="right")
    for r in results:
        server = r.get("server", {})
        passes.add_row(
            str(r["clients"]),
            "-" if r["batch_size"] is None else str(r["batch_size"]),
            *("-" if server.get(k) is None else str(server[k]) for k in keys.values()),
        )
    out.print(passes)


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}×"


@bench_app.command("teacher")
@handle_errors
def teacher_cmd(
    server: Annotated[
        list[str] | None,
        typer.Option(
            "--server",
            help="Start llama-cpp-python's server on an embedded base: smollm2-135m, "
            "gemma3-270m (repeatable); add :FORMAT for a chat format, e.g. smollm2-135m:gemma.",
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="An OpenAI-compatible /v1 URL instead of --server.")
    ] = None,
    model: Annotated[str, typer.Option(help="The model name to ask for.")] = "teacher",
    mode: Annotated[
        list[str] | None, typer.Option("--mode", help="auto, json_object, none, … (repeatable).")
    ] = None,
    calls: Annotated[int, typer.Option("--calls", "-n", min=1, help="Calls per task.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A real LLM teacher: valid answers, attempts, tokens, latency per structured-output
    mode; and the answers a program's own enum type rejects (JARVIS's schema vs byLLM's)."""
    modes = tuple(mode or teacher.MODES)
    say = (lambda msg: err.print(msg, markup=False)) if as_json else (lambda msg: out.print(msg))
    rows: list[dict[str, Any]] = []
    if base_url:
        rows += teacher.run(base_url, model, server=base_url, modes=modes, calls=calls, say=say)
    for spec in server or ([] if base_url else ["smollm2-135m"]):
        base, _, chat_format = spec.partition(":")
        with teacher.llama_server(base, chat_format or None) as url:
            rows += teacher.run(url, model, server=spec, modes=modes, calls=calls, say=say)
    if as_json:
        print_json({"teacher": rows})
        return
    table = Table(title=f"Teacher: {calls} calls per task and mode")
    for col in (
        "server",
        "mode",
        "task",
        "valid",
        "attempts",
        "tokens in/out",
        "p50",
        "passed bad",
    ):
        table.add_column(col, justify="left" if col in ("server", "mode", "task") else "right")
    for r in rows:
        bad = r["program_rejects_passed"]
        table.add_row(
            r["server"],
            r["mode"],
            r["task"],
            f"{r['valid_share']:.0%}",
            f"{r['attempts_per_call']:.2f}",
            f"{r['tokens_in_per_call']:.0f} / {r['tokens_out_per_call']:.0f}",
            f"{(r['latency_p50_ms'] or 0) / 1000:.2f} s",
            "-" if bad is None else str(bad),
        )
    out.print(table)
    for r in {r["server"] + r["mode"]: r for r in rows}.values():
        for decision in r["decisions"]:
            out.print(f"  {r['server']} · {r['mode']}: {decision}", markup=False)


def _lat(lat: dict[str, float | None]) -> str:
    parts = ("-" if lat[k] is None else f"{lat[k]:.0f}" for k in ("p50", "p95", "p99"))
    return " / ".join(parts) + " ms"


def _src(by: dict[str, int]) -> str:
    return " / ".join(str(by.get(k, 0)) for k in ("student", "fallback", "teacher"))
