"""The vLLM check on a real published version's adapter (PEFT, as a training run writes it),
and on copies of it broken the ways vLLM's LoRA loader refuses (see ``vllm_check``'s sources).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jarvis import Jarvis
from jarvis.cli import app
from jarvis.registry import adapter_path
from jarvis.serving.vllm_check import vllm_max_lora_rank, vllm_problems

WEIGHTS = "adapter_model.safetensors"


@pytest.fixture
def rt(runtime: Jarvis) -> Jarvis:
    runtime.sync_tasks()  # the tasks' rows, which versions refer to
    return runtime


@pytest.fixture
def adapter(rt: Jarvis, make_version: Callable[[Jarvis, str, int], str]) -> Path:
    version = make_version(rt, "create_next_level", 1)
    return adapter_path(rt.settings.models_dir, "create_next_level", version)


def edit_config(**changes: Any) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        config = json.loads((path / "adapter_config.json").read_text())
        config.update(changes)
        (path / "adapter_config.json").write_text(json.dumps(config))

    return edit


def edit_tensors(rename: Callable[[str], str | None]) -> Callable[[Path], None]:
    """Rewrite the weights with each name renamed (None: dropped)."""

    def edit(path: Path) -> None:
        from safetensors.numpy import load_file, save_file

        tensors = load_file(str(path / WEIGHTS))
        renamed = {new: v for k, v in tensors.items() if (new := rename(k)) is not None}
        save_file(renamed, str(path / WEIGHTS))

    return edit


FIRST_Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"

BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "bias": (edit_config(bias="all"), "bias is 'all'"),
    "lora_only bias": (edit_config(bias="lora_only"), "only bias 'none'"),
    "dora": (edit_config(use_dora=True), "DoRA"),
    "rank 1024": (edit_config(r=1024), "rank 1024 is greater than max_lora_rank 16"),
    "rank 0": (edit_config(r=0), "positive integer"),
    "modules_to_save": (edit_config(modules_to_save=["lm_head"]), "modules_to_save"),
    "rank pattern": (edit_config(rank_pattern={"q_proj": 8}), "rank_pattern"),
    "not a lora": (edit_config(peft_type="PREFIX_TUNING"), "LoRA adapters only"),
    "unknown target": (edit_config(target_modules=["q_proj", "rotary"]), "['rotary']"),
    "r disagrees with the weights": (edit_config(r=8), "but r is 8"),
    "no config": (lambda p: (p / "adapter_config.json").unlink(), "is missing"),
    "unreadable config": (
        lambda p: (p / "adapter_config.json").write_text("{not json"),
        "not readable JSON",
    ),
    "no weights": (lambda p: (p / WEIGHTS).unlink(), f"{WEIGHTS} is missing"),
    "damaged weights": (
        lambda p: (p / WEIGHTS).write_bytes(b"\xff" * 64),
        "not a readable safetensors",
    ),
    "bad tensor name": (
        edit_tensors(lambda k: k.replace(".lora_A.weight", ".lora_A.default.weight")),
        "cannot parse this name",
    ),
    "unsupported module": (
        edit_tensors(lambda k: k.replace("self_attn.v_proj", "self_attn.rotary")),
        "targets 'rotary'",
    ),
    "lora_A without lora_B": (
        edit_tensors(lambda k: None if k == FIRST_Q_B else k),
        "has only lora_A",
    ),
}


def test_a_published_adapter_has_no_vllm_problems(adapter: Path) -> None:
    assert vllm_problems(adapter) == []
    assert vllm_problems(adapter, max_lora_rank=8) == []  # its rank is 4


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_thing_vllm_refuses_is_reported(adapter: Path, tmp_path: Path, case: str) -> None:
    broken = tmp_path / "adapter"
    shutil.copytree(adapter, broken)
    mutate, expected = BROKEN[case]
    mutate(broken)
    problems = vllm_problems(broken)
    assert any(expected in p for p in problems), problems
    assert all(p.endswith((".", ")")) for p in problems)  # sentences


def test_the_max_lora_rank_must_be_one_vllm_accepts(adapter: Path) -> None:
    assert vllm_problems(adapter, max_lora_rank=24) == [
        "vLLM accepts --max-lora-rank only as one of [1, 8, 16, 32, 64, 128, 256, 320, 512], "
        "not 24."
    ]
    assert [vllm_max_lora_rank(r) for r in (1, 4, 16, 17, 300, 512, 513)] == [
        1,
        8,
        16,
        32,
        320,
        512,
        None,
    ]


def test_export_model_format_vllm_checks_and_prints_the_serve_command(
    rt: Jarvis,
    make_version: Callable[[Jarvis, str, int], str],
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = make_version(rt, "create_next_level", 1)
    adapter = adapter_path(rt.settings.models_dir, "create_next_level", version)
    monkeypatch.setenv("JARVIS_BASE_MODEL", str(tiny_base))
    runner = CliRunner()
    args = ["export-model", "create_next_level", version, "--format", "vllm"]

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    command = " ".join(result.stdout.split())  # undo any line wrapping
    assert (
        f"vllm serve {tiny_base} --enable-lora --max-lora-rank 8 "
        f"--lora-modules create_next_level={adapter}"
    ) in command

    copy = tmp_path / "for-vllm"
    result = runner.invoke(app, [*args, "-o", str(copy)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in copy.iterdir()) == ["adapter_config.json", WEIGHTS]
    assert f"create_next_level={copy}" in " ".join(result.stdout.split())

    edit_config(use_dora=True)(adapter)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "DoRA" in result.output and "vLLM would not load" in result.output
