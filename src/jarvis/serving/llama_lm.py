"""The llama.cpp backend: one GGUF base in memory, GGUF LoRA adapters swapped per request.

Switching adapter is a pointer change on the context (``llama_set_adapters_lora``), so a
request for another task costs nothing extra, and a version promoted a second ago is loaded
from its ``adapter.gguf`` on first use. The KV cache of the previous request is reused up to
where the new prompt departs from it (prefix caching: the system prompt and the call's head,
under the same adapter). The grammar, sampling and jump-forward stay in :mod:`.decode`; this
class only reads tokens and returns logits.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jarvis.core.errors import BackendError

__all__ = ["LlamaCppLM", "llama_cpp_available"]


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppLM:
    def __init__(self, gguf_path: Path, *, threads: int | None = None, n_ctx: int = 4096) -> None:
        import llama_cpp  # the serve extra (compiled); the torch engine serves without it

        self._lib = llama_cpp
        threads = threads or os.cpu_count() or 1
        self.llm = llama_cpp.Llama(
            model_path=str(gguf_path),
            n_ctx=n_ctx,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=False,
            verbose=False,
        )
        self.n_vocab = self.llm.n_vocab()
        self._adapters: dict[str, Any] = {}
        self._current: str | None = None
        self._fresh = False  # the next scores() call starts a new sequence
        self._cached_under: str | None = None  # the adapter the KV cache was computed with

    def load_adapter(self, name: str, path: Path) -> None:
        if name in self._adapters:
            return
        pointer = self._lib.llama_adapter_lora_init(self.llm._model.model, str(path).encode())
        if not pointer:
            raise BackendError(f"llama.cpp could not load the adapter {path}")
        self._adapters[name] = pointer

    def use_adapter(self, name: str | None) -> None:
        """Make ``name`` (or no adapter) the one applied from the next token on."""
        if name == self._current:
            return
        ctx = self.llm._ctx.ctx
        if name is None:
            rc = self._lib.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            adapters = (self._lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            rc = self._lib.llama_set_adapters_lora(ctx, adapters, 1, scales)
        if rc != 0:
            raise BackendError(f"llama.cpp refused the adapter {name!r} (code {rc})")
        self._current = name

    def begin(self) -> None:
        self._fresh = True

    def scores(self, tokens: Sequence[int], rows: np.ndarray | None) -> np.ndarray:
        tokens = list(tokens)
        if self._fresh:
            # prefix caching: keep the KV cache of the previous sequence up to where this
            # prompt departs from it (same adapter only: LoRA changes keys and values)
            self._fresh = False
            keep = 0
            if self._cached_under == self._current:
                cached = self.llm.input_ids[: self.llm.n_tokens]
                limit = min(len(cached), len(tokens) - 1)  # evaluate at least one token
                while keep < limit and cached[keep] == tokens[keep]:
                    keep += 1
            self.llm.n_tokens = keep  # eval() drops the cache beyond n_tokens
            self._cached_under = self._current
            tokens = tokens[keep:]
        self.llm.eval(tokens)
        pointer = self._lib.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        picked = logits[rows] if rows is not None else logits.copy()
        return picked.astype(np.float32, copy=False)
