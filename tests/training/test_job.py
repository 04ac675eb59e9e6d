"""The whole loop on the tiny base: threshold → training job → gate → version → promotion, and
what happens when a job is bad, or killed, or a version is rolled back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.threads import THREADS
from jarvis import Jarvis, Settings
from jarvis.registry import Registry, version_dir
from jarvis.rpg import create_next_level
from jarvis.runtime import job

pytestmark = pytest.mark.slow


def tiny_settings(home: Path, base: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "teacher_seed": 3,
        "base_model": str(base),
        "threshold": 12,
        "train_max_steps": 4,
        "train_tokens_per_batch": 1024,
        "lora_rank": 4,
        "lora_alpha": 8,
        "gate_examples": 3,
        "gate_min_examples": 3,
        "gate_floor": 0.0,
        "agreement_floor": 0.0,
        "train_threads": THREADS,
        "heldout_share": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def fill(rt: Jarvis, n: int) -> None:
    """Play n level calls through the router: the oracle answers, examples accumulate."""
    for i in range(n):
        rt.call(create_next_level, {"last_levels": [], "difficulty": 1 + i % 20})


def queue(rt: Jarvis, **train: object) -> int:
    n = rt.store.example_count(create_next_level.name, "train")
    run_id = rt.store.runs.enqueue(
        create_next_level.name, {"train_examples": n, "train": train}, "test"
    )
    assert run_id is not None
    return run_id


def test_a_job_trains_gates_publishes_and_promotes(home: Path, tiny_base: Path) -> None:
    settings = tiny_settings(home, tiny_base)
    rt = Jarvis(settings)
    fill(rt, 30)
    run_id = queue(rt)

    assert job.run(run_id, settings) == 0

    run = rt.store.runs.get(run_id)
    assert run is not None and run["status"] == "succeeded" and run["version"] == "v0001"
    assert rt.store.versions.active("create_next_level") == "v0001"
    folder = version_dir(settings.models_dir, "create_next_level", "v0001")
    card = json.loads((folder / "card.json").read_text())
    assert (folder / "adapter" / "adapter_config.json").is_file()
    assert card["base_model"]["path"] == str(tiny_base)
    assert card["train"]["examples"] == rt.store.example_count("create_next_level", "train")
    assert card["train"]["steps"] == 4 and len(card["train"]["losses"]) == 4
    assert card["gate"]["candidate"]["examples"] == 3
    assert card["gate"]["verdict"]["promote"] is True
    assert card["parent"] is None
    assert card["serving"] == {"vllm_problems": []}  # vLLM's LoRA loader would accept it
    assert run["progress"]["phase"] == "done"


def test_a_candidate_that_fails_its_gate_is_not_promoted(home: Path, tiny_base: Path) -> None:
    """The random tiny model cannot write valid levels, so a 90% floor rejects it."""
    settings = tiny_settings(home, tiny_base, gate_floor=0.9)
    rt = Jarvis(settings)
    fill(rt, 30)
    run_id = queue(rt)

    assert job.run(run_id, settings) == 0

    versions = rt.store.versions.of_task("create_next_level")
    assert [v["status"] for v in versions] == ["rejected"]
    assert rt.store.versions.active("create_next_level") is None
    assert "below the floor" in versions[0]["card"]["gate"]["verdict"]["reason"]


def test_a_killed_run_leaves_the_active_version_untouched(home: Path, tiny_base: Path) -> None:
    settings = tiny_settings(home, tiny_base)
    rt = Jarvis(settings)
    fill(rt, 30)
    assert job.run(queue(rt), settings) == 0  # v0001 is active
    run_id = queue(rt, epochs=1000, max_steps=10_000)  # long enough to be killed mid-training

    settings_file = home / "job-settings.json"
    settings_file.write_text(json.dumps(settings.model_dump(mode="json")))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jarvis.runtime.job",
            str(run_id),
            "--settings",
            str(settings_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = (rt.store.runs.get(run_id) or {}).get("progress", {})
        if progress.get("step", 0) >= 1:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the job never started training")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert (rt.store.runs.get(run_id) or {})["status"] == "running"  # nobody told the store
    assert rt.worker().recover() == [run_id]
    run = rt.store.runs.get(run_id)
    assert run is not None and run["status"] == "failed" and "interrupted" in run["error"]
    assert rt.store.versions.active("create_next_level") == "v0001"
    assert not version_dir(settings.models_dir, "create_next_level", "v0002").exists()


def test_the_worker_trains_at_the_threshold_and_the_router_picks_up_the_student(
    home: Path, tiny_base: Path
) -> None:
    """No restart: the runtime that made the teacher calls serves the new version next."""
    # without the grammar, so that the untrained tiny student surely writes nonsense (under a
    # grammar it writes well-formed levels and is sometimes right by chance)
    settings = tiny_settings(home, tiny_base, student_retries=1, constrained=False)
    rt = Jarvis(settings)
    worker = rt.worker()
    fill(rt, 5)
    assert worker.step() is None  # below the threshold: nothing to do

    fill(rt, 25)
    outcome = worker.step()
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert outcome.version == "v0001"  # served from the very next call

    result = rt.call(create_next_level, {"last_levels": [], "difficulty": 2})
    sources = [(a.source, a.version) for a in result.attempts]
    assert sources[0] == ("student", "v0001")
    # The untrained tiny student writes nonsense: retried once, then the teacher answers.
    assert sources == [("student", "v0001"), ("student", "v0001"), ("teacher", None)]
    assert result.fallback and result.valid
    assert result.attempts[1].sampling.temperature > 0  # the retry really sampled


def test_a_retrained_version_is_first_a_canary_beside_the_active_one(
    home: Path, tiny_base: Path
) -> None:
    settings = tiny_settings(home, tiny_base, canary_share=0.25)
    rt = Jarvis(settings)
    fill(rt, 30)
    assert job.run(queue(rt), settings) == 0
    fill(rt, 5)
    assert job.run(queue(rt), settings) == 0

    assert rt.store.versions.active("create_next_level") == "v0001"
    assert rt.store.versions.canary("create_next_level") == {
        "version": "v0002",
        "share": 0.25,
        "since": pytest.approx(time.time(), abs=120),
    }
    newest = rt.store.insights.events("create_next_level", limit=2)
    assert [e["kind"] for e in newest] == ["trained", "canary"]
    assert "v0002 serves 25% of the calls beside v0001" in newest[1]["message"]


def test_rollback_restores_the_previous_version(home: Path, tiny_base: Path) -> None:
    settings = tiny_settings(home, tiny_base, canary_share=1.0)  # promoted at once
    rt = Jarvis(settings)
    fill(rt, 30)
    assert job.run(queue(rt), settings) == 0
    fill(rt, 5)
    assert job.run(queue(rt), settings) == 0
    registry = Registry(rt.store, settings.models_dir)
    assert registry.active("create_next_level") == "v0002"
    card = json.loads(
        (version_dir(settings.models_dir, "create_next_level", "v0002") / "card.json").read_text()
    )
    assert card["parent"] == "v0001" and card["gate"]["active"] is not None

    assert registry.rollback("create_next_level") == "v0001"
    assert registry.active("create_next_level") == "v0001"
    statuses = {v["name"]: v["status"] for v in registry.versions("create_next_level")}
    assert statuses == {"v0001": "active", "v0002": "rolled_back"}


def test_eval_and_export_model_from_the_command_line(
    home: Path, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from jarvis.cli import app

    settings = tiny_settings(home, tiny_base)
    rt = Jarvis(settings)
    fill(rt, 30)
    assert job.run(queue(rt), settings) == 0
    monkeypatch.setenv("JARVIS_BASE_MODEL", str(tiny_base))
    monkeypatch.setenv("JARVIS_TRAIN_THREADS", str(THREADS))
    runner = CliRunner()

    result = runner.invoke(app, ["eval", "create_next_level", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == "v0001" and report["examples"] == 2
    assert 0.0 <= report["semantic_pass"] <= 1.0

    merged = home / "merged"
    result = runner.invoke(app, ["export-model", "create_next_level", "v0001", "-o", str(merged)])
    assert result.exit_code == 0, result.output
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert not (merged / "adapter_config.json").exists()  # a full model, not an adapter

    result = runner.invoke(app, ["export-model", "create_next_level", "v0001", "-o", str(merged)])
    assert result.exit_code == 2 and "not empty" in result.output
