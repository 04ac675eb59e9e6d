"""Disk full while a training job saves its version: the run fails with the OS's reason, the
half-written staging directory is removed, no version is published, the active one stays.

The write error is injected (``OSError(ENOSPC)``) where a full disk would raise it: while the
adapter's weights are written, and while the card is flushed to disk at publication.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from helpers.threads import THREADS
from jarvis import Jarvis, Settings
from jarvis.registry import version_dir
from jarvis.rpg import create_next_level
from jarvis.runtime import job
from jarvis.training import job as training_job

pytestmark = pytest.mark.slow

TASK = "create_next_level"


def tiny_settings(home: Path, base: Path) -> Settings:
    return Settings(
        home=home,
        teacher_seed=3,
        base_model=str(base),
        threshold=12,
        train_max_steps=2,
        train_tokens_per_batch=1024,
        lora_rank=4,
        lora_alpha=8,
        gate_examples=2,
        gate_min_examples=2,
        gate_floor=0.0,
        agreement_floor=0.0,
        canary_share=1.0,  # a version that passes its gate is promoted at once
        train_threads=THREADS,
        heldout_share=0.2,
    )


def queue(rt: Jarvis) -> int:
    n = rt.store.example_count(TASK, "train")
    run_id = rt.store.runs.enqueue(TASK, {"train_examples": n, "train": {}}, "test")
    assert run_id is not None
    return run_id


def disk_full(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_weights_then_fail(model: Any) -> Any:
    """``save_pretrained`` that gets part of the way, as a filling disk does."""

    def save_pretrained(directory: Path, *args: Any, **kwargs: Any) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "adapter_model.safetensors").write_bytes(b"\x00" * 512)
        disk_full()

    model.save_pretrained = save_pretrained
    return model


@pytest.mark.parametrize("where", ["adapter weights", "card"])
def test_a_full_disk_while_saving_a_version_fails_the_run_cleanly(
    home: Path, tiny_base: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    settings = tiny_settings(home, tiny_base)
    rt = Jarvis(settings)
    for i in range(30):
        rt.call(create_next_level, {"last_levels": [], "difficulty": 1 + i % 20})
    assert job.run(queue(rt), settings) == 0
    assert rt.store.versions.active(TASK) == "v0001"
    folder = version_dir(settings.models_dir, TASK, "v0001").parent

    with monkeypatch.context() as patch:
        if where == "adapter weights":
            load = training_job.load_for_training

            def loading(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
                model, tokenizer = load(*args, **kwargs)
                return fill_weights_then_fail(model), tokenizer

            patch.setattr(training_job, "load_for_training", loading)
        else:
            patch.setattr(os, "fsync", disk_full)  # publish() flushes the card before the rename
        run_id = queue(rt)
        assert job.run(run_id, settings) == 1

    run = rt.store.runs.get(run_id)
    assert run is not None and run["status"] == "failed"
    assert "No space left on device" in run["error"], run["error"]
    assert run["version"] == "v0002"
    statuses = {v["name"]: v["status"] for v in rt.store.versions.of_task(TASK)}
    assert statuses["v0001"] == "active" and statuses["v0002"] == "failed"
    assert rt.store.versions.active(TASK) == "v0001"
    assert sorted(p.name for p in folder.iterdir()) == ["v0001"]  # no staging dir, no v0002
    events = [e for e in rt.store.insights.events(TASK) if e["kind"] == "training_failed"]
    assert events and "No space left on device" in events[-1]["message"]

    if where == "card":  # space again: the next run publishes as usual
        assert job.run(queue(rt), settings) == 0
        assert rt.store.versions.active(TASK) == "v0003"
    rt.close()
