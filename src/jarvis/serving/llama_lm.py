"""The llama.cpp backend, one sequence at a time: the serial path (``batch_size=1``).

The same context as continuous batching (:class:`.llama_batch.LlamaBatchLM`) with one slot,
driven by :func:`.decode.decode` directly: GGUF LoRA adapters swapped per request (a pointer
change on the context), and the KV cache of the previous request reused up to where the new
prompt departs from it (prefix caching, under the same adapter). The grammar, sampling and
jump-forward stay in :mod:`.decode`; this class only reads tokens and returns logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jarvis.core.extras import has_extra
from jarvis.serving.llama_batch import LlamaBatchLM, Read

__all__ = ["LlamaCppLM", "llama_cpp_available"]


def llama_cpp_available() -> bool:
    return has_extra("serve")


class LlamaCppLM:
    def __init__(
        self,
        gguf_path: Path,
        *,
        threads: int | None = None,
        n_ctx: int = 4096,
        prefix_cache: bool = True,
    ) -> None:
        self.context = LlamaBatchLM(
            gguf_path, slots=1, ctx_per_slot=n_ctx, threads=threads, prefix_cache=prefix_cache
        )
        self.n_vocab = self.context.n_vocab
        self._adapter: str | None = None
        self._fresh = False  # the next scores() call starts a new sequence
        self.read = 0  # tokens read by the model so far (prefix caching shows here)

    def load_adapter(self, name: str, path: Path) -> None:
        self.context.load_adapter(name, path)

    def use_adapter(self, name: str | None) -> None:
        """Make ``name`` (or no adapter) the one applied from the next token on."""
        self.context.use_adapter(name)
        self._adapter = name

    def begin(self) -> None:
        self._fresh = True

    def scores(self, tokens: Sequence[int], rows: np.ndarray | None) -> np.ndarray:
        tokens = list(tokens)
        if self._fresh:
            self._fresh = False
            _, cached = self.context.claim([0], self._adapter, tokens)
            tokens = tokens[cached:]
        step = self.context.max_step_tokens
        for start in range(0, len(tokens) - step, step):  # a long prompt: chunks, no logits
            self.context.forward([Read(0, tokens[start : start + step], logits=False)], [None])
        last = tokens[(max(len(tokens) - 1, 0) // step) * step :]
        self.read += len(tokens)
        logits: np.ndarray = self.context.forward([Read(0, last)], [rows])[0]
        return logits
