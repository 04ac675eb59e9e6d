"""A real server on a free port, in a thread, around a real runtime.

The runtime uses the procedural teacher and, as its student, the real serving engine (torch
backend) on the tiny test base. ``make_version`` publishes a version with a random LoRA
adapter, as a training run would, so promotion and hot-swapping can be tested without
training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer

from jarvis import Jarvis, Settings
from jarvis.registry import ADAPTER, publish, staging_dir


@pytest.fixture
def served_settings(home: Path, tiny_base: Path) -> Settings:
    return Settings(
        home=home,
        teacher_seed=7,
        base_model=str(tiny_base),
        engine="torch",
        student_retries=0,
        max_tokens=256,
    )


@pytest.fixture
def live(served_settings: Settings) -> Iterator[LiveServer]:
    rt = Jarvis(served_settings)
    rt.sync_tasks()
    with LiveServer(rt) as server:
        yield server
    rt.close()


@pytest.fixture
def make_version(tiny_base: Path) -> Callable[[Jarvis, str, int], str]:
    """Publish a version of ``task`` whose adapter has random weights from ``seed``."""

    def make(rt: Jarvis, task: str, seed: int) -> str:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
        torch.manual_seed(seed)
        config = LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
        )
        peft_model: Any = get_peft_model(model, config)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.mul_(20.0)  # strong enough that two adapters answer differently
        version = rt.store.versions.allocate(task)
        staging = staging_dir(rt.settings.models_dir, task, version)
        peft_model.save_pretrained(staging / ADAPTER)
        card = {"task": task, "version": version, "train": {"max_answer_tokens": 120}}
        publish(staging, rt.settings.models_dir, task, version, card)
        rt.store.versions.set_status(task, version, "candidate", card)
        return version

    return make
