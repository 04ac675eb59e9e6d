"""Loading the student with transformers: the tokenizer, the base, the base with an adapter.

The one place where a model directory becomes a torch model, for training, for the torch
serving engine and for exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jarvis.core.extras import require_extra

__all__ = ["bf16_is_fast", "load_causal_lm", "load_tokenizer", "load_with_adapter", "resolve_dtype"]

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_is_fast(cpuinfo: str | None = None) -> bool:
    """Does this CPU multiply bfloat16 natively (AVX512-BF16 or AMX)?

    Only then are bf16 weights the faster choice (~2.3x fp32 on such a CPU). Without them torch
    emulates bf16 matmuls: measured on an AVX2-only AMD EPYC, a 512x576 @ 576x1536 product took
    0.75 s in bf16 against 0.011 s in fp32 (68x), and a training step 330 s instead of ~5 s.
    Read from /proc/cpuinfo (Linux); elsewhere the answer is no, and fp32 is used.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return any(flag in flags for flag in _BF16_FLAGS)


def resolve_dtype(dtype: str) -> str:
    """``"auto"``: bfloat16 where the CPU has native bf16, else float32; else ``dtype``."""
    if dtype == "auto":
        return "bfloat16" if bf16_is_fast() else "float32"
    return dtype


def load_tokenizer(path: Path) -> Any:
    require_extra("train", "the student's tokenizer")
    from transformers import AutoTokenizer  # the train extra

    return AutoTokenizer.from_pretrained(path)


def load_causal_lm(path: Path, dtype: str = "auto") -> Any:
    """The base model, weights in ``dtype`` ("bfloat16", "float32" or "auto": whichever this
    CPU computes faster, :func:`resolve_dtype`), in training mode."""
    require_extra("train", "the student's base model")
    import torch  # the train extra
    from transformers import AutoModelForCausalLM

    torch_dtype = torch.bfloat16 if resolve_dtype(dtype) == "bfloat16" else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)


def load_with_adapter(base: Path, adapter: Path) -> Any:
    """The base (in this CPU's faster dtype) with one adapter applied, ready to generate."""
    from peft import PeftModel  # the train extra

    model = PeftModel.from_pretrained(load_causal_lm(base), str(adapter))
    model.eval()
    return model
