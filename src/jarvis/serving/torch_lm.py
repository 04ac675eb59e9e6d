"""The torch backend: a Hugging Face causal LM (with PEFT adapters) behind :class:`LanguageModel`.

It keeps a KV cache across steps and, when the grammar names the candidate tokens, multiplies
the last hidden state by those rows of the LM head only (a few dozen of 49,152 for the RPG
tasks), instead of computing every logit. Always available, since training needs torch; the
llama.cpp backend is faster where it is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TorchLM"]


class TorchLM:
    def __init__(self, model: Any) -> None:
        import torch

        self._torch = torch
        self._cache: Any = None
        self.set_model(model)

    def set_model(self, model: Any) -> None:
        """Serve ``model`` (e.g. the same base, now wrapped with PEFT adapters)."""
        self.model = model
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._body = inner.model  # the transformer without its LM head
        self._head = inner.get_output_embeddings().weight
        self._rows: dict[tuple[int, ...], Any] = {}

    @property
    def n_vocab(self) -> int:
        """Rows of the LM head: the logits' length."""
        return int(self._head.shape[0])

    def begin(self) -> None:
        from transformers import DynamicCache

        self._cache = DynamicCache()

    def scores(self, tokens: Sequence[int], rows: np.ndarray | None) -> np.ndarray:
        torch = self._torch
        ids = torch.tensor([list(tokens)], dtype=torch.long)
        with torch.inference_mode():
            hidden = self._body(input_ids=ids, cache=self._cache, use_cache=True).last_hidden_state[
                0, -1
            ]
            if rows is None:
                logits = hidden @ self._head.T
            else:
                key = tuple(rows.tolist())
                head = self._rows.get(key)
                if head is None:
                    if len(self._rows) > 4096:
                        self._rows.clear()
                    head = self._head[torch.tensor(key, dtype=torch.long)]
                    self._rows[key] = head
                logits = hidden @ head.T
        result: np.ndarray = logits.float().numpy()
        return result
