"""The local student: one base model in memory, one LoRA adapter per task, in this process.

The router asks :meth:`LocalStudent.active_version` on every call; the answer comes from the
store (cached for a moment), so a version promoted by the worker, or a rollback, is picked up
by the next calls without a restart. Adapters are loaded on first use and kept; torch is only
imported when a student actually answers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from jarvis.backends import Generation, GenerationRequest
from jarvis.config import Settings
from jarvis.errors import BackendError, JarvisError
from jarvis.registry import adapter_path, read_card
from jarvis.store import Store
from jarvis.training.generate import answer_cap

ACTIVE_TTL_S = 1.0


def load_version_model(settings: Settings, task: str, version: str) -> tuple[Any, Any]:
    """The base model with one version's adapter, ready to generate; and its tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jarvis.training.base_model import resolve_base
    from jarvis.training.trainer import set_threads

    path = adapter_path(settings.models_dir, task, version)
    set_threads(settings.train_threads)
    base = resolve_base(settings.base_model, settings.home)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.bfloat16)
    peft_model = PeftModel.from_pretrained(model, str(path))
    peft_model.eval()
    return peft_model, tokenizer


class LocalStudent:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.Lock()  # one generation at a time on the shared model
        self._active: dict[str, tuple[float, str | None]] = {}
        self._model: Any = None
        self._tokenizer: Any = None
        self._loaded: set[str] = set()
        self._max_new: dict[str, int] = {}  # per adapter: a cap near its longest answer

    def active_version(self, task: str) -> str | None:
        now = time.monotonic()
        cached = self._active.get(task)
        if cached is not None and now - cached[0] < ACTIVE_TTL_S:
            return cached[1]
        version = self.store.versions.active(task)
        self._active[task] = (now, version)
        return version

    def _ensure_model(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from jarvis.training.base_model import resolve_base
        from jarvis.training.trainer import set_threads

        set_threads(self.settings.train_threads)
        base = resolve_base(self.settings.base_model, self.settings.home)
        self._tokenizer = AutoTokenizer.from_pretrained(base.path)
        self._model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.bfloat16)
        self._model.eval()

    def _ensure_adapter(self, task: str, version: str) -> str:
        name = f"{task}@{version}"
        if name in self._loaded:
            return name
        path = adapter_path(self.settings.models_dir, task, version)
        from peft import PeftModel

        if not self._loaded:
            self._model = PeftModel.from_pretrained(self._model, str(path), adapter_name=name)
        else:
            self._model.load_adapter(str(path), adapter_name=name)
        self._model.eval()
        card = read_card(self.settings.models_dir, task, version)
        longest = int(card.get("train", {}).get("max_answer_tokens") or 0)
        if longest:
            # an answer much longer than any it was trained on is a runaway: stop early
            self._max_new[name] = answer_cap(longest)
        self._loaded.add(name)
        return name

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        from jarvis.training.generate import generate_batch

        with self._lock:
            try:
                self._ensure_model()
                name = self._ensure_adapter(request.task.name, version)
                self._model.set_adapter(name)
                max_new = min(
                    request.sampling.max_tokens or self.settings.max_tokens,
                    self._max_new.get(name, self.settings.max_tokens),
                )
                out = generate_batch(
                    self._model,
                    self._tokenizer,
                    request.task,
                    [request.inputs],
                    request.sampling,
                    max_new,
                )[0]
            except JarvisError as exc:
                raise BackendError(f"student {request.task.name}@{version}: {exc}") from exc
            except (OSError, RuntimeError, ValueError) as exc:
                raise BackendError(f"student {request.task.name}@{version} failed: {exc}") from exc
        return Generation(
            text=out.text,
            model=f"{self.settings.base_model}+{request.task.name}@{version}",
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
        )
