"""One training run, start to finish, in its own process: ``python -m jarvis.training.job RUN``.

    claim the run ─▶ base model ─▶ all train examples (cumulative) ─▶ LoRA training
      ─▶ gate on held-out examples (and the active version on the same ones)
      ─▶ version published on disk + recorded ─▶ promoted if the gate says so

A crash, an OOM kill or a kill -9 anywhere leaves the active version as it was: the new
version is built in a hidden directory and only published and promoted at the very end. The
worker that started the process marks a dead run as failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from jarvis.codec import student_answer
from jarvis.config import Settings
from jarvis.errors import ConfigError, JarvisError
from jarvis.registry import ADAPTER, Registry, adapter_path, discard, publish, staging_dir
from jarvis.runtime import Jarvis
from jarvis.serving.engine import Adapter, Engine
from jarvis.serving.vllm_check import vllm_problems
from jarvis.tasks import Task
from jarvis.training.base_model import resolve_base
from jarvis.training.dataset import IGNORE, tokenize_rows, traffic_weighted
from jarvis.training.gate import GateReport, decide, evaluate
from jarvis.training.generate import answer_cap, engine_answerer
from jarvis.training.trainer import Progress, TrainConfig, load_for_training, train


def train_config(
    settings: Settings, task: str, overrides: dict[str, Any], declared: dict[str, Any] | None = None
) -> TrainConfig:
    """The run's hyper-parameters: settings, the task's declared defaults, per-task settings,
    then the run's own."""
    declared = declared or {}

    def pick(key: str) -> Any:
        return settings.for_task(task, key, declared.get(key))

    values: dict[str, Any] = {
        "epochs": pick("train_epochs"),
        "max_steps": pick("train_max_steps"),
        "learning_rate": pick("train_learning_rate"),
        "rank": pick("lora_rank"),
        "alpha": pick("lora_alpha"),
        "tokens_per_batch": pick("train_tokens_per_batch"),
        "max_length": pick("train_max_length"),
        "threads": settings.train_threads,
    }
    values.update(overrides)
    return TrainConfig(**values)


def heldout_sample(rt: Jarvis, task: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` held-out examples: the same set for every candidate of a task."""
    rows = []
    for row in rt.store.iter_examples(task, "heldout"):
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def max_new_tokens(task: Task[Any], rows: list[dict[str, Any]], tokenizer: Any) -> int:
    """Room for the longest teacher answer seen, with a margin."""

    longest = 16
    for row in rows:
        answer = student_answer(task, task.output_adapter.validate_python(row["output"]))
        longest = max(longest, len(tokenizer(answer).input_ids))
    return answer_cap(longest)


def evaluate_version(
    rt: Jarvis, task: Task[Any], version: str, limit: int | None = None
) -> GateReport:
    """Run the gate on demand: ``version`` of ``task`` on its held-out sample."""
    engine = Engine(rt.settings)
    n = limit or int(rt.settings.for_task(task.name, "gate_examples"))
    heldout = heldout_sample(rt, task.name, n)
    rows = list(rt.store.iter_examples(task.name, "train"))[:50]
    adapter = Adapter(
        f"{task.name}@{version}", adapter_path(rt.settings.models_dir, task.name, version)
    )
    cap = max_new_tokens(task, heldout + rows, engine.tokenizer)
    return evaluate(task, heldout, engine_answerer(engine, task, adapter, cap), budget=cap)


def run(run_id: int, settings: Settings) -> int:
    rt = Jarvis(settings)
    store = rt.store
    record = store.runs.get(run_id)
    if record is None:
        raise ConfigError(f"no training run {run_id}")
    if not store.runs.claim(run_id, os.getpid()):
        raise ConfigError(f"training run {run_id} is {record['status']}, not queued")
    task = rt.task(record["task"])
    registry = Registry(store, settings.models_dir)
    staging: Path | None = None
    try:
        cfg = train_config(settings, task.name, record["params"].get("train", {}), task.train)

        def say(phase: str, **fields: Any) -> None:
            store.runs.progress(run_id, phase=phase, **fields)

        say("loading the base model")
        base = resolve_base(settings.base_model, settings.home, lambda msg: say(msg))
        model, tokenizer = load_for_training(base.path, cfg)

        rows = list(store.iter_examples(task.name, "train"))
        distinct, too_long = tokenize_rows(tokenizer, task, rows, cfg.max_length)
        # recurring calls weigh more (see jarvis.split): what the program sends most
        examples = traffic_weighted(distinct, {r["id"]: r.get("seen", 1) for r in rows})
        say("training", examples=len(distinct), rows=len(examples), skipped_too_long=too_long)

        losses: list[float] = []  # the whole curve, so the dashboard can draw it live

        def on_progress(p: Progress) -> None:
            losses.append(round(p.loss, 4))
            store.runs.progress(
                run_id,
                losses=losses,
                phase="training",
                step=p.step,
                total_steps=p.total_steps,
                epoch=round(p.epoch, 3),
                loss=round(p.loss, 5),
                examples_per_s=round(p.examples_per_s, 3),
                seconds_per_step=round(p.seconds_per_step, 3),
                eta_s=round(p.eta_s, 1),
                learning_rate=p.learning_rate,
            )

        result = train(
            model, tokenizer, examples, cfg, skipped_too_long=too_long, on_progress=on_progress
        )

        version = store.versions.allocate(task.name)
        store.runs.set_version(run_id, version)
        staging = staging_dir(settings.models_dir, task.name, version)
        model.save_pretrained(staging / ADAPTER)

        heldout = heldout_sample(rt, task.name, settings.for_task(task.name, "gate_examples"))
        limit = max_new_tokens(task, heldout + rows[:50], tokenizer)
        say("gating", heldout=len(heldout))

        # the gate decodes through the serving engine: it judges what serving will answer
        model.eval()
        engine = Engine(settings, model=model, tokenizer=tokenizer)
        candidate = Adapter("default", staging / ADAPTER)
        report = evaluate(
            task, heldout, engine_answerer(engine, task, candidate, limit), budget=limit
        )
        active_name = registry.active(task.name)
        active_report: GateReport | None = None
        if active_name is not None:
            say("gating the active version", heldout=len(heldout))
            active = Adapter("active", adapter_path(settings.models_dir, task.name, active_name))
            active_report = evaluate(
                task, heldout, engine_answerer(engine, task, active, limit), budget=limit
            )
        floor = float(settings.for_task(task.name, "gate_floor"))
        text_floor = float(settings.for_task(task.name, "text_gate_floor"))
        verdict = decide(report, active_report, floor, text_floor=text_floor)

        card = {
            "task": task.name,
            "version": version,
            "parent": active_name,
            "created_at": time.time(),
            "base_model": base.info,
            "train": {
                "examples": len(distinct),
                "rows": len(examples),  # with repeats of recurring examples
                "skipped_too_long": too_long,
                # the longest answer trained on, in tokens: serving caps generation near it
                "max_answer_tokens": max(
                    (sum(1 for x in e.labels if x != IGNORE) for e in examples), default=0
                ),
                "example_ids": [
                    min((r["id"] for r in rows), default=None),
                    max((r["id"] for r in rows), default=None),
                ],
                "config": cfg.as_dict(),
                "steps": result.steps,
                "first_loss": result.first_loss,
                "final_loss": result.final_loss,
                "losses": [round(x, 5) for x in result.losses],
                "duration_s": round(result.duration_s, 1),
                "examples_per_s": round(result.examples_per_s, 3),
                "seconds_per_step": round(result.seconds_per_step, 3),
                "peak_rss_mb": round(result.peak_rss_mb, 1),
            },
            "gate": {
                "floor": floor,
                **({"text_floor": text_floor} if task.is_free_text else {}),
                "engine": engine.backend,
                "constrained": settings.constrained,
                "candidate": report.as_dict(),
                "active": active_report.as_dict() if active_report else None,
                "verdict": verdict.as_dict(),
            },
            "run_id": run_id,
            "serving": {"vllm_problems": vllm_problems(staging / ADAPTER)},
        }
        publish(staging, settings.models_dir, task.name, version, card)
        staging = None
        store.versions.set_status(
            task.name, version, "candidate" if verdict.promote else "rejected", card
        )
        if verdict.promote:
            registry.promote(task.name, version)
        store.add_event(
            "trained",
            f"{task.name} {version}: {verdict.reason}",
            task=task.name,
            version=version,
            promoted=verdict.promote,
        )
        say("done", version=version, promoted=verdict.promote, reason=verdict.reason)
        store.runs.finish(run_id, "succeeded")
        return 0
    except BaseException as exc:
        if staging is not None:
            discard(staging)
        message = f"{type(exc).__name__}: {exc}"
        store.fail_run(run_id, message)
        if not isinstance(exc, JarvisError | KeyboardInterrupt):
            traceback.print_exc()
        return 1
    finally:
        rt.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one JARVIS training run (run id).")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--settings", type=Path, help="JSON settings written by the worker.")
    args = parser.parse_args(argv)
    try:
        if args.settings is not None:
            settings = Settings(**json.loads(args.settings.read_text()))
        else:
            settings = Settings()
        return run(args.run_id, settings)
    except JarvisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
