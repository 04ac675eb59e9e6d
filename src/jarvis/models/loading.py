"""Loading the student with transformers: the tokenizer, the base, the base with an adapter.

The one place where a model directory becomes a torch model, for training, for the torch
serving engine and for exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["load_causal_lm", "load_tokenizer", "load_with_adapter"]


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer  # the train extra

    return AutoTokenizer.from_pretrained(path)


def load_causal_lm(path: Path, dtype: str = "bfloat16") -> Any:
    """The base model, weights in ``dtype`` ("bfloat16" or "float32"), in training mode."""
    import torch  # the train extra
    from transformers import AutoModelForCausalLM

    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)


def load_with_adapter(base: Path, adapter: Path) -> Any:
    """The bf16 base with one adapter applied, ready to generate."""
    from peft import PeftModel  # the train extra

    model = PeftModel.from_pretrained(load_causal_lm(base), str(adapter))
    model.eval()
    return model
