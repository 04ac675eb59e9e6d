"""Which dtype the student's base is loaded in: bf16 only where the CPU computes it natively."""

from __future__ import annotations

from jarvis.models.loading import bf16_is_fast, resolve_dtype

AVX2_ONLY = "processor : 0\nflags : fpu sse sse2 avx avx2 fma\n"
SAPPHIRE_RAPIDS = "flags : fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def test_bf16_is_chosen_only_with_native_bf16_instructions() -> None:
    assert not bf16_is_fast(AVX2_ONLY)
    assert bf16_is_fast(SAPPHIRE_RAPIDS)
    assert not bf16_is_fast("flags : avx512f avx512bw\n")  # AVX-512 alone emulates bf16


def test_auto_resolves_to_a_real_dtype_and_explicit_choices_stand() -> None:
    assert resolve_dtype("auto") in ("bfloat16", "float32")
    assert resolve_dtype("auto") == ("bfloat16" if bf16_is_fast() else "float32")
    assert resolve_dtype("float32") == "float32" and resolve_dtype("bfloat16") == "bfloat16"
