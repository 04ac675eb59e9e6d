"""llama.cpp with many sequences in one context: the forward passes continuous batching shares.

One context holds ``slots`` sequences, each in its own KV stream (``kv_unified=false``: a token
attends only to its own sequence's cells, so attention costs what it would alone). One
:meth:`LlamaBatchLM.forward` reads new tokens for several slots in a single ``llama_decode``
and returns, for each slot that asked, the logits after its last token. Decoding one token of a
135M model is bound by reading the weights; reading them once for sixteen sequences costs
little more than for one, which is where the throughput comes from.

LoRA adapters are set on the context, so one forward pass serves one adapter; sequences of
different adapters live side by side in the KV cache (their cells were computed under their own
adapter) and take turns (:mod:`.batcher`). A slot keeps its KV cells after its answer: the next
request under the same adapter reuses the longest common prefix (the system prompt, the call's
head), as llama.cpp's own server does with its slots.

Written against llama-cpp-python's ctypes bindings because its high-level ``Llama`` class holds
one sequence; nothing installable offers a multi-sequence context for Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jarvis.core.errors import BackendError

__all__ = ["LlamaBatchLM", "Read"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Read:
    """Tokens for one slot to read in a forward pass; ``logits``: return the scores after the
    last of them (False while a long prompt is read in chunks of ``max_step_tokens``)."""

    slot: int
    tokens: Sequence[int]
    logits: bool = True


@dataclass(slots=True)
class _Slot:
    adapter: str | None = None
    cached: list[int] = field(default_factory=list)  # tokens whose KV cells the slot holds


class LlamaBatchLM:
    def __init__(
        self,
        gguf_path: Path,
        *,
        slots: int,
        ctx_per_slot: int = 4096,
        threads: int | None = None,
        max_step_tokens: int = 512,
        prefix_cache: bool = True,
    ) -> None:
        import llama_cpp  # the serve extra

        self._lib = lib = llama_cpp
        lib.llama_backend_init()
        _quiet(lib)
        threads = threads or os.cpu_count() or 1
        model_params = lib.llama_model_default_params()
        model_params.use_extra_bufts = not amx_kernels_would_run(lib)
        self._model = lib.llama_model_load_from_file(str(gguf_path).encode(), model_params)
        if not self._model:
            raise BackendError(f"llama.cpp could not load {gguf_path}")
        params = lib.llama_context_default_params()
        params.n_ctx = slots * ctx_per_slot
        # a step reads up to max_step_tokens, and the read that crosses that line whole (one
        # ubatch: a sequence's tokens are never split, so its rounding is what it is alone)
        params.n_batch = 2 * max_step_tokens
        params.n_ubatch = 2 * max_step_tokens
        params.n_seq_max = slots
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = False
        # plain attention: llama.cpp's CPU flash attention is slower at these sizes (measured:
        # 16 tokens 162 -> 87 ms, one token 26 -> 18 ms on a 2-core Xeon), and the answers
        # and prompts here are short
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self._ctx = lib.llama_init_from_model(self._model, params)
        if not self._ctx:
            lib.llama_model_free(self._model)
            raise BackendError(f"llama.cpp could not make a context for {slots} sequences")
        self._memory = lib.llama_get_memory(self._ctx)
        self.n_vocab = int(lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self._model)))
        self.ctx_per_slot = ctx_per_slot
        self.max_step_tokens = max_step_tokens
        self.prefix_cache = prefix_cache
        self._batch = lib.llama_batch_init(2 * max_step_tokens, 0, 1)
        self._slots = [_Slot() for _ in range(slots)]
        self._adapters: dict[str, Any] = {}
        self._current: str | None = None

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = True) -> list[int]:
        """``text`` in the GGUF's own vocabulary (``special``: parse ``<|im_start|>`` etc.)."""
        lib = self._lib
        vocab = lib.llama_model_get_vocab(self._model)
        data = text.encode()
        size = len(data) + 8
        tokens = (lib.llama_token * size)()
        n = lib.llama_tokenize(vocab, data, len(data), tokens, size, add_bos, special)
        if n < 0:
            raise BackendError(f"llama.cpp could not tokenize {len(data)} bytes")
        return list(tokens[:n])

    @property
    def slots(self) -> int:
        return len(self._slots)

    def close(self) -> None:
        lib = self._lib
        if self._ctx:
            lib.llama_batch_free(self._batch)
            lib.llama_free(self._ctx)
            self._ctx = None
        for pointer in self._adapters.values():
            lib.llama_adapter_lora_free(pointer)
        self._adapters.clear()
        if self._model:
            lib.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown the library may be gone
            self.close()

    # -- adapters ------------------------------------------------------------------------

    def has_adapter(self, name: str) -> bool:
        return name in self._adapters

    def load_adapter(self, name: str, path: Path) -> None:
        if name in self._adapters:
            return
        pointer = self._lib.llama_adapter_lora_init(self._model, str(path).encode())
        if not pointer:
            raise BackendError(f"llama.cpp could not load the adapter {path}")
        self._adapters[name] = pointer

    def use_adapter(self, name: str | None) -> None:
        """Apply ``name`` (or no adapter) to the next forward passes."""
        if name == self._current:
            return
        lib = self._lib
        if name is None:
            rc = lib.llama_set_adapters_lora(self._ctx, None, 0, None)
        else:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            rc = lib.llama_set_adapters_lora(self._ctx, adapters, 1, scales)
        if rc != 0:
            raise BackendError(f"llama.cpp refused the adapter {name!r} (code {rc})")
        self._current = name

    # -- sequences -----------------------------------------------------------------------

    def claim(
        self, free: Sequence[int], adapter: str | None, prompt: Sequence[int]
    ) -> tuple[int, int]:
        """Pick the free slot whose cached tokens share the longest prefix with ``prompt``
        under the same adapter, and drop the rest of its cells: the slot, and how many prompt
        tokens it has read already (the caller skips them)."""
        if len(prompt) >= self.ctx_per_slot:
            raise BackendError(
                f"the prompt has {len(prompt)} tokens; a slot holds {self.ctx_per_slot}"
            )
        best, keep = free[0], -1
        for slot in free if self.prefix_cache else ():
            state = self._slots[slot]
            shared = _common_prefix(state.cached, prompt) if state.adapter == adapter else 0
            if shared > keep:
                best, keep = slot, shared
        keep = min(max(keep, 0), len(prompt) - 1)  # read at least one token: its logits
        state = self._slots[best]
        self._lib.llama_memory_seq_rm(self._memory, best, keep, -1)
        del state.cached[keep:]
        state.adapter = adapter
        return best, keep

    def room(self, slot: int) -> int:
        """How many more tokens the slot can read."""
        return self.ctx_per_slot - len(self._slots[slot].cached)

    def forget(self, slot: int) -> None:
        """Drop the slot's cells (after a failure: their content is unknown)."""
        self._lib.llama_memory_seq_rm(self._memory, slot, -1, -1)
        self._slots[slot].cached.clear()

    def forward(self, reads: Sequence[Read], rows: Sequence[np.ndarray | None]) -> list[Any]:
        """Read every ``Read`` in one pass (under the current adapter); for each that wants
        logits, the scores of ``rows`` (all tokens when None), else None."""
        lib = self._lib
        batch = self._batch
        n = 0
        wants: list[int] = []
        total = sum(len(read.tokens) for read in reads)
        if total > 2 * self.max_step_tokens:
            raise BackendError(f"a step of {total} tokens exceeds {2 * self.max_step_tokens}")
        for read in reads:
            state = self._slots[read.slot]
            start = len(state.cached)
            for k, token in enumerate(read.tokens):
                batch.token[n] = token
                batch.pos[n] = start + k
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = read.slot
                batch.logits[n] = 0
                n += 1
            if read.logits:
                batch.logits[n - 1] = 1
            wants.append(n - 1 if read.logits else -1)
        batch.n_tokens = n
        rc = lib.llama_decode(self._ctx, batch)
        if rc != 0:
            raise BackendError(f"llama.cpp could not decode a batch of {n} tokens (code {rc})")
        for read in reads:
            self._slots[read.slot].cached.extend(read.tokens)
        results: list[Any] = []
        for i, want in enumerate(wants):
            if want < 0:
                results.append(None)
                continue
            pointer = lib.llama_get_logits_ith(self._ctx, want)
            logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
            picked = logits[rows[i]] if rows[i] is not None else logits.copy()
            results.append(picked.astype(np.float32, copy=False))
        return results


@functools.cache
def amx_kernels_would_run(lib: Any) -> bool:
    """Would llama.cpp put the weights in its AMX buffers? Only with AMX compiled in (a build
    with ``-march=native`` on such a CPU) and a CPU that has it (Intel Xeon 4th gen on).

    Their matmul crashes llama.cpp on these models (a segfault in ``ggml_backend_amx_mul_mat``,
    measured with llama-cpp-python 0.3.36); then the engine loads without the extra weight
    buffers, which also turns off the repacked (faster) layouts. ``scripts/setup.sh`` builds
    llama.cpp without AMX kernels, so the repacked layouts stay."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if "amx_int8" not in flags:
        return False
    library = Path(lib.__file__).parent / "lib"
    for path in library.glob("libggml-cpu*.so*"):
        with contextlib.suppress(OSError):
            if b"ggml_backend_amx_buffer_type" in path.read_bytes():
                return True
    return False


_LOG_ERROR = 3  # ggml_log_level: GGML_LOG_LEVEL_ERROR


@functools.cache
def _quiet(lib: Any) -> Any:
    """llama.cpp writes every load and graph detail to stderr; keep its errors, in our log.
    Set once per process; the cache keeps the callback alive while llama.cpp may call it."""

    def forward(level: int, text: bytes, _user: Any) -> None:
        if level == _LOG_ERROR:
            log.error("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

    callback = lib.llama_log_callback(forward)
    lib.llama_log_set(callback, ctypes.c_void_p(0))
    return callback


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
