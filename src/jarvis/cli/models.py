"""Training and versions: ``train``, ``runs``, ``versions``, ``promote``, ``rollback``,
``eval``, ``worker`` and ``export-model``."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jarvis.cli.common import handle_errors, out, print_json, runtime
from jarvis.core.errors import JarvisError
from jarvis.core.extras import require_extra
from jarvis.models.loading import load_tokenizer, load_with_adapter
from jarvis.models.threads import set_threads
from jarvis.registry import WEIGHTS
from jarvis.runtime import Jarvis
from jarvis.serving.gguf_merge import merge_adapter
from jarvis.serving.vllm_check import vllm_max_lora_rank, vllm_problems
from jarvis.training.gate import evaluate_version
from jarvis.training.worker import describe_run, queue_run

__all__ = ["register"]


class ExportFormat(StrEnum):
    """What ``export-model`` writes."""

    hf = "hf"
    gguf = "gguf"
    vllm = "vllm"


def register(app: typer.Typer) -> None:
    for name, command in (
        ("train", train_cmd),
        ("runs", runs_cmd),
        ("versions", versions_cmd),
        ("promote", promote_cmd),
        ("rollback", rollback_cmd),
        ("eval", eval_cmd),
        ("worker", worker_cmd),
        ("export-model", export_model_cmd),
    ):
        app.command(name)(handle_errors(command))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


# -- train, runs ------------------------------------------------------------------------------


def train_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task to train.")],
    wait: Annotated[bool, typer.Option("--wait", help="Train now and show progress.")] = False,
    epochs: Annotated[float | None, typer.Option(help="Override the epochs.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N steps.")] = None,
) -> None:
    """Train a new version of TASK on all its training examples, gate it, promote it if good.

    Without --wait the run is queued for `jarvis worker` (or `jarvis up`).
    """
    if wait:  # queued without --wait: the worker that runs it may be another machine's
        require_extra("train", "training")
    rt = runtime(ctx)
    t = rt.task(task)
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["epochs"] = epochs
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    run_id, n_train = queue_run(rt.store, t.name, overrides, "requested (jarvis train)")
    if not wait:
        out.print(
            f"queued run {run_id} for {t.name} ({n_train} training examples); "
            "`jarvis worker` runs it, `jarvis runs` shows it",
            markup=False,
        )
        return
    run = _follow(rt, run_id)
    p = run.get("progress", {})
    if run.get("status") != "succeeded":
        raise JarvisError(f"run {run_id} failed: {run.get('error')}")
    verdict = "promoted" if p.get("promoted") else "not promoted"
    out.print(f"run {run_id}: {run.get('version')} {verdict}: {p.get('reason')}", markup=False)


def _follow(rt: Jarvis, run_id: int) -> dict[str, Any]:
    """Run a queued job in a subprocess, with a progress bar fed from the store."""
    worker = rt.worker()
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.update(o=worker.run_job(run_id)))
    thread.start()
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=out, transient=False) as bar:
        job = bar.add_task(f"run {run_id}", total=None, info="starting")
        while thread.is_alive():
            thread.join(0.5)
            run = rt.store.runs.get(run_id) or {}
            p = run.get("progress", {})
            if p.get("total_steps"):
                info = escape(describe_run(run))
                bar.update(job, total=p["total_steps"], completed=p.get("step", 0), info=info)
            else:
                bar.update(job, info=escape(str(p.get("phase", run.get("status", "")))))
    return rt.store.runs.get(run_id) or {}


def runs_cmd(
    ctx: typer.Context,
    task: Annotated[str | None, typer.Argument(help="Only this task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Training runs, newest first, with their progress."""
    rows = runtime(ctx).store.runs.recent(task)
    if as_json:
        print_json({"runs": rows})
        return
    table = Table(title="Training runs")
    for col in ("id", "task", "status", "started", "version", "progress / error", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        started = (
            dt.datetime.fromtimestamp(r["started_at"]).strftime("%H:%M:%S")
            if r["started_at"]
            else "-"
        )
        detail = r["error"] if r["status"] == "failed" else describe_run(r)
        table.add_row(
            str(r["id"]),
            escape(r["task"]),
            r["status"],
            started,
            r["version"] or "-",
            escape(detail or ""),
            escape(r["reason"] or ""),
        )
    out.print(table)


# -- versions ---------------------------------------------------------------------------------


def versions_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with the cards).")] = False,
) -> None:
    """The versions of TASK with their gate results; the active one is marked."""
    rt = runtime(ctx)
    rows = rt.registry.versions(task)
    if as_json:
        print_json({"task": task, "active": rt.registry.active(task), "versions": rows})
        return
    table = Table(title=f"Versions of {escape(task)}")
    for col in (
        "version",
        "status",
        "created",
        "examples",
        "final loss",
        "format",
        "semantic",
        "agreement",
        "threshold",
        "train s",
        "verdict",
    ):
        table.add_column(col, overflow="fold")
    for v in rows:
        card = v["card"]
        gate = card.get("gate", {}).get("candidate") or {}
        train = card.get("train", {})
        table.add_row(
            v["name"],
            ("[bold green]active[/]" if v["status"] == "active" else v["status"]),
            dt.datetime.fromtimestamp(v["created_at"]).strftime("%m-%d %H:%M"),
            str(train.get("examples", "-")),
            f"{train['final_loss']:.4f}" if "final_loss" in train else "-",
            _pct(gate.get("format_pass")),
            _pct(gate.get("semantic_pass")),
            _pct(gate.get("agreement")),
            str(card.get("confidence_threshold", "-")),
            str(train.get("duration_s", "-")),
            escape(card.get("gate", {}).get("verdict", {}).get("reason", "")),
        )
    out.print(table)


def promote_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name.")],
    version: Annotated[str, typer.Argument(help="Version, e.g. v0002.")],
) -> None:
    """Make VERSION the active version of TASK (atomic)."""
    runtime(ctx).registry.promote(task, version)
    out.print(f"{task} {version} is now active", markup=False)


def rollback_cmd(
    ctx: typer.Context, task: Annotated[str, typer.Argument(help="Task name.")]
) -> None:
    """Retire the active version of TASK and restore the one before it (or the teacher)."""
    previous = runtime(ctx).registry.rollback(task)
    out.print(
        f"{task}: now served by {previous or 'the teacher (no active version)'}", markup=False
    )


def eval_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name.")],
    version: Annotated[str | None, typer.Argument(help="Version (default: active).")] = None,
    limit: Annotated[int | None, typer.Option(help="Held-out examples to use.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the held-out gate on a version now and print its figures."""
    rt = runtime(ctx)
    t = rt.task(task)
    name = version or rt.registry.active(t.name)
    if name is None:
        raise JarvisError(f"task {t.name!r} has no active version; name one")
    engine = rt.local_engine()
    n = limit or rt.task_settings(t.name).gate_examples
    report = evaluate_version(rt.store, engine, t, rt.registry.adapter(t.name, name), n)
    if as_json:
        print_json({"task": t.name, "version": name, **report.as_dict()})
        return
    similarity = report.text_similarity
    text = "" if similarity is None else f"{report.text_metric} {similarity:.3f}, "
    fields = "-" if report.field_agreement is None else f"{report.field_agreement:.1%}"
    agree = "-" if report.agreement is None else f"{report.agreement:.1%}"
    cal = report.calibration or {}
    out.print(
        f"{t.name} {name} on {report.examples} held-out examples: format "
        f"{report.format_pass:.1%}, semantic {report.semantic_pass:.1%}, agreement "
        f"({report.compare}) {agree}, fields {fields}, {text}confidence threshold "
        f"{cal.get('threshold')} (coverage {cal.get('coverage')}), {report.seconds:.0f} s",
        markup=False,
    )
    for f in report.failures[:5]:
        out.print(f"  failed ({f['stage']}): {f['reason']}", markup=False)


# -- worker -----------------------------------------------------------------------------------


def worker_cmd(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Watch every task; train, gate and promote when a task is due (one job at a time)."""
    require_extra("train", "the training worker")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    worker = runtime(ctx).worker()
    recovered = worker.recover()
    if recovered:
        out.print(f"marked interrupted runs as failed: {recovered}")
    if once:
        outcome = worker.step()
        out.print(f"{outcome}" if outcome else "nothing to do", markup=False)
        return
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        out.print("worker stopped")


# -- export -----------------------------------------------------------------------------------


def export_model_cmd(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name.")],
    version: Annotated[str, typer.Argument(help="Version, e.g. v0002.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Directory (hf, vllm) or .gguf file (gguf) to write."),
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="hf: merged Hugging Face model directory; gguf: one merged GGUF for "
            "llama.cpp / Ollama; vllm: check the adapter against vLLM's LoRA loader and "
            "print the `vllm serve` command (with -o: copy the adapter there too).",
        ),
    ] = ExportFormat.hf,
) -> None:
    """Write a merged full model (base + adapter), or check the adapter for vLLM."""
    rt = runtime(ctx)
    if fmt is ExportFormat.vllm:
        _export_vllm(rt, task, version, output)
        return
    if output is None:
        raise JarvisError(f"--format {fmt.value} needs --output")
    if fmt is ExportFormat.gguf:
        _export_gguf(rt, task, version, output)
    else:
        _export_hf(rt, task, version, output)


def _export_hf(rt: Jarvis, task: str, version: str, output: Path) -> None:
    if output.exists() and any(output.iterdir()):
        raise JarvisError(f"{output} exists and is not empty")
    adapter = rt.registry.adapter(task, version)
    base = rt.base.resolve()
    set_threads(rt.settings.train_threads)
    model = load_with_adapter(base.path, adapter.path)
    model.merge_and_unload().save_pretrained(output, safe_serialization=True)
    load_tokenizer(base.path).save_pretrained(output)
    out.print(f"wrote the merged model of {task} {version} to {output}", markup=False)


def _export_gguf(rt: Jarvis, task: str, version: str, output: Path) -> None:
    if output.exists():
        raise JarvisError(f"{output} exists")
    adapter = rt.registry.adapter(task, version)
    gguf = rt.base.serving_gguf()
    if gguf is None:
        raise JarvisError(
            f"the base model {rt.settings.base_model!r} has no GGUF form here; "
            "use --format hf (and llama.cpp's convert_hf_to_gguf.py)"
        )
    base = rt.base.resolve()
    merge_adapter(adapter.path, base.path, gguf, output, name=f"{task} {version}")
    out.print(f"wrote {task} {version} merged into {gguf.name} to {output}", markup=False)


def _export_vllm(rt: Jarvis, task: str, version: str, output: Path | None) -> None:
    adapter = rt.registry.adapter(task, version).path
    try:
        rank = json.loads((adapter / "adapter_config.json").read_text()).get("r")
    except (OSError, ValueError):
        rank = None
    max_rank = (vllm_max_lora_rank(rank) if isinstance(rank, int) and rank > 0 else None) or 16
    problems = vllm_problems(adapter, max_rank)
    if problems:
        for problem in problems:
            out.print(f"  {problem}", markup=False)
        raise JarvisError(f"vLLM would not load {task} {version} ({len(problems)} problems)")
    if output is not None:
        if output.exists() and any(output.iterdir()):
            raise JarvisError(f"{output} exists and is not empty")
        output.mkdir(parents=True, exist_ok=True)
        for name in ("adapter_config.json", WEIGHTS):
            shutil.copyfile(adapter / name, output / name)
        adapter = output.resolve()
    base = rt.base.resolve()
    out.print(
        f"{task} {version}: vLLM's LoRA loader accepts this adapter; serve it with", markup=False
    )
    out.print(
        f"vllm serve {base.path} --enable-lora --max-lora-rank {max_rank} "
        f"--lora-modules {task}={adapter}",
        markup=False,
        soft_wrap=True,
    )
