"""One training run, start to finish (the body of the run's own process).

    claim the run ─▶ base model ─▶ all train examples (cumulative) ─▶ LoRA training
      ─▶ gate on held-out examples (and the active version on the same ones)
      ─▶ version published on disk + recorded ─▶ promoted if the gate says so

A crash, an OOM kill or a kill -9 anywhere leaves the active version as it was: the new
version is built in a hidden directory and only published and promoted at the very end. The
worker that started the process marks a dead run as failed. The process itself is started by
the runtime (``python -m jarvis.runtime.job RUN``), which turns the settings into a
:class:`JobConfig`.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jarvis.catalogue import TaskCatalogue
from jarvis.core.errors import ConfigError, JarvisError
from jarvis.core.task_settings import TaskSettings, TaskSettingsFor
from jarvis.core.tasks import Task
from jarvis.models.base import BaseModel
from jarvis.models.loading import resolve_dtype
from jarvis.registry import ADAPTER, Adapter, Registry, discard, publish, staging_dir
from jarvis.serving.engine import Engine, EngineConfig
from jarvis.serving.vllm_check import vllm_problems
from jarvis.store import Store
from jarvis.store.feedback import outranked
from jarvis.training.dataset import IGNORE, TokenizedExample, tokenize_rows, traffic_weighted
from jarvis.training.gate import (
    GateConfig,
    GateReport,
    GateVerdict,
    decide,
    engine_answerer,
    evaluate,
    heldout_sample,
    max_new_tokens,
)
from jarvis.training.trainer import Progress, TrainConfig, TrainResult, load_for_training, train

__all__ = ["JobConfig", "gate_config", "run", "train_config"]


@dataclass(frozen=True)
class JobConfig:
    """What a training run needs besides the store and the tasks."""

    models_dir: Path
    engine: EngineConfig  # the base model, its cache, threads; the gate decodes through it
    task_settings: TaskSettingsFor


def train_config(
    ts: TaskSettings,
    overrides: dict[str, Any],
    threads: int | None = None,
    compare: str = "fields",
) -> TrainConfig:
    """The run's hyper-parameters: the task's settings, then the run's own overrides.

    Replay asks the student to write each answer exactly as the teacher did; a task compared
    on validity alone (a random teacher) or on text similarity does not ask that, so it trains
    for its epochs only."""
    values: dict[str, Any] = {
        "replay_rounds": ts.train_replay_rounds if compare not in ("valid", "text") else 0,
        "learned_at": ts.train_learned_at,
        "time_budget_s": ts.train_time_budget_s,
        "target_modules": list(ts.lora_target_modules),
        "epochs": ts.train_epochs,
        "max_steps": ts.train_max_steps,
        "learning_rate": ts.train_learning_rate,
        "rank": ts.lora_rank,
        "alpha": ts.lora_alpha,
        "tokens_per_batch": ts.train_tokens_per_batch,
        "max_length": ts.train_max_length,
        "threads": threads,
    }
    values.update(overrides)
    return TrainConfig(**values)


def gate_config(ts: TaskSettings) -> GateConfig:
    return GateConfig(
        floor=ts.gate_floor,
        text_floor=ts.text_gate_floor,
        examples=ts.gate_examples,
        min_examples=ts.gate_min_examples,
        agreement_floor=ts.agreement_floor,
        target_agreement=ts.target_agreement,
    )


@dataclass
class _Trained:
    """What training produced: the model with its new adapter, and the figures."""

    base: BaseModel
    model: Any
    tokenizer: Any
    rows: list[dict[str, Any]]  # the training examples, as stored
    distinct: list[TokenizedExample]
    weighted: list[TokenizedExample]  # with the repeats of recurring examples
    too_long: int
    config: TrainConfig
    result: TrainResult


@dataclass
class _Gated:
    candidate: GateReport
    active: GateReport | None
    active_name: str | None
    verdict: GateVerdict
    config: GateConfig
    engine: str | None  # the engine's backend that answered (llama.cpp, torch)
    constrained: bool


class _Run:
    """One claimed run: its record, and how it reports progress to the store."""

    def __init__(self, store: Store, run_id: int) -> None:
        record = store.runs.get(run_id)
        if record is None:
            raise ConfigError(f"no training run {run_id}")
        if not store.runs.claim(run_id, os.getpid()):
            raise ConfigError(f"training run {run_id} is {record['status']}, not queued")
        self.store = store
        self.id = run_id
        self.record = record
        self.losses: list[float] = []  # the whole curve, so the dashboard can draw it live

    def say(self, phase: str, **fields: Any) -> None:
        self.store.runs.progress(self.id, phase=phase, **fields)

    def step(self, p: Progress) -> None:
        self.losses.append(round(p.loss, 4))
        self.say(
            "training",
            losses=self.losses,
            step=p.step,
            total_steps=p.total_steps,
            epoch=round(p.epoch, 3),
            loss=round(p.loss, 5),
            examples_per_s=round(p.examples_per_s, 3),
            seconds_per_step=round(p.seconds_per_step, 3),
            eta_s=round(p.eta_s, 1),
            learning_rate=p.learning_rate,
        )


def run(run_id: int, store: Store, catalogue: TaskCatalogue, config: JobConfig) -> int:
    """Run queued run ``run_id``; 0 when it succeeded (promoted or not), 1 when it failed."""
    job = _Run(store, run_id)
    registry = Registry(store, config.models_dir)
    staging: Path | None = None
    try:
        task = catalogue.get(job.record["task"])
        ts = config.task_settings(task.name)
        overrides = job.record["params"].get("train", {})
        cfg = train_config(ts, overrides, config.engine.threads, task.compare)
        trained = _train(job, task, cfg, config.engine)

        version = store.versions.allocate(task.name)
        store.runs.set_version(run_id, version)
        staging = staging_dir(config.models_dir, task.name, version)
        trained.model.save_pretrained(staging / ADAPTER)

        gated = _gate(job, task, trained, staging / ADAPTER, registry, config, gate_config(ts))
        card = _card(task, version, trained, gated, run_id, staging / ADAPTER)
        publish(staging, config.models_dir, task.name, version, card)
        staging = None
        _conclude(job, registry, task, version, gated.verdict, card, ts.canary_share)
        return 0
    except BaseException as exc:
        if staging is not None:
            discard(staging)
        store.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, JarvisError | KeyboardInterrupt):
            traceback.print_exc()
        return 1


def _train(job: _Run, task: Task[Any], cfg: TrainConfig, engine: EngineConfig) -> _Trained:
    """The base model, every training example of the task (cumulative), LoRA training."""
    job.say("loading the base model")
    base = engine.base.resolve(lambda msg: job.say(msg))
    model, tokenizer = load_for_training(base.path, cfg)
    # a person's correction outranks every other answer to the same input
    rows = outranked(job.store.iter_examples(task.name, "train"))
    distinct, too_long = tokenize_rows(tokenizer, task, rows, cfg.max_length)
    # recurring calls weigh more (see jarvis.core.split): what the program sends most
    weighted = traffic_weighted(distinct, {r["id"]: r.get("seen", 1) for r in rows})
    job.say("training", examples=len(distinct), rows=len(weighted), skipped_too_long=too_long)
    result = train(model, tokenizer, weighted, cfg, skipped_too_long=too_long, on_progress=job.step)
    return _Trained(base, model, tokenizer, rows, distinct, weighted, too_long, cfg, result)


def _gate(
    job: _Run,
    task: Task[Any],
    trained: _Trained,
    candidate_dir: Path,
    registry: Registry,
    config: JobConfig,
    gate: GateConfig,
) -> _Gated:
    """The candidate, then the active version, on the same held-out examples, through the
    serving engine: the gate judges what serving will answer."""
    heldout = heldout_sample(job.store, task.name, gate.examples)
    limit = max_new_tokens(task, heldout + trained.rows[:50], trained.tokenizer)
    job.say("gating", heldout=len(heldout))
    trained.model.eval()
    engine = Engine(config.engine, model=trained.model, tokenizer=trained.tokenizer)

    def judge(adapter: Adapter) -> GateReport:
        answer = engine_answerer(engine, task, adapter, limit)
        return evaluate(task, heldout, answer, budget=limit, target_agreement=gate.target_agreement)

    report = judge(Adapter("default", candidate_dir))
    active_name = registry.active(task.name)
    active_report: GateReport | None = None
    if active_name is not None:
        job.say("gating the active version", heldout=len(heldout))
        active_report = judge(Adapter("active", registry.adapter(task.name, active_name).path))
    verdict = decide(
        report,
        active_report,
        gate.floor,
        text_floor=gate.text_floor,
        min_examples=gate.min_examples,
        agreement_floor=gate.agreement_floor,
    )
    return _Gated(
        report, active_report, active_name, verdict, gate, engine.backend, engine.config.constrained
    )


def _card(
    task: Task[Any],
    version: str,
    trained: _Trained,
    gated: _Gated,
    run_id: int,
    adapter_dir: Path,
) -> dict[str, Any]:
    """Everything worth knowing about the version, written beside its adapter."""
    result, rows = trained.result, trained.rows
    gate: dict[str, Any] = {
        "floor": gated.config.floor,
        "agreement_floor": gated.config.agreement_floor,
        "target_agreement": gated.config.target_agreement,
    }
    if task.is_free_text:
        gate["text_floor"] = gated.config.text_floor
    return {
        "task": task.name,
        "version": version,
        "parent": gated.active_name,
        "created_at": time.time(),
        "base_model": trained.base.info,
        "train": {
            "examples": len(trained.distinct),
            "rows": len(trained.weighted),  # with repeats of recurring examples
            "skipped_too_long": trained.too_long,
            # the longest answer trained on, in tokens: serving caps generation near it
            "max_answer_tokens": max(
                (sum(1 for x in e.labels if x != IGNORE) for e in trained.weighted), default=0
            ),
            "example_ids": [
                min((r["id"] for r in rows), default=None),
                max((r["id"] for r in rows), default=None),
            ],
            "config": trained.config.as_dict(),
            "dtype": resolve_dtype(trained.config.dtype),  # what "auto" was on this CPU
            "steps": result.steps,
            "replay_rounds": result.replay_rounds,
            "learned": result.learned,  # share of examples known at the last check
            "first_loss": result.first_loss,
            "final_loss": result.final_loss,
            "losses": [round(x, 5) for x in result.losses],
            "duration_s": round(result.duration_s, 1),
            "examples_per_s": round(result.examples_per_s, 3),
            "seconds_per_step": round(result.seconds_per_step, 3),
            "peak_rss_mb": round(result.peak_rss_mb, 1),
        },
        "gate": {
            **gate,
            "engine": gated.engine,
            "constrained": gated.constrained,
            "candidate": gated.candidate.as_dict(),
            "active": gated.active.as_dict() if gated.active else None,
            "verdict": gated.verdict.as_dict(),
        },
        # the router escalates the version's answers below this confidence to the teacher
        "confidence_threshold": (gated.candidate.calibration or {}).get("threshold"),
        "run_id": run_id,
        "serving": {"vllm_problems": vllm_problems(adapter_dir)},
    }


def _conclude(
    job: _Run,
    registry: Registry,
    task: Task[Any],
    version: str,
    verdict: GateVerdict,
    card: dict[str, Any],
    canary_share: float = 1.0,
) -> None:
    """Record the version (candidate or rejected); release it if the gate said so: promoted
    when nothing is active, else a canary beside the active version."""
    store = job.store
    status = "candidate" if verdict.promote else "rejected"
    store.versions.set_status(task.name, version, status, card)
    released = registry.release(task.name, version, canary_share) if verdict.promote else None
    store.add_event(
        "trained",
        f"{task.name} {version}: {verdict.reason}",
        task=task.name,
        version=version,
        promoted=verdict.promote,
        released=released,
    )
    job.say(
        "done", version=version, promoted=verdict.promote, released=released, reason=verdict.reason
    )
    store.runs.finish(job.id, "succeeded")
