"""The local student: one base model in memory, one LoRA adapter per task, in this process.

The router asks :meth:`LocalStudent.active_version` on every call; the answer comes from the
store, so a version promoted by the worker, or a rollback, is picked up
by the next calls without a restart. The serving engine (:mod:`jarvis.serving.engine`) loads
each adapter on first use and keeps it; nothing heavy is imported until a student answers.
"""

from __future__ import annotations

from typing import Any

from jarvis.backends import Generation, GenerationRequest
from jarvis.config import Settings
from jarvis.errors import BackendError, JarvisError
from jarvis.registry import adapter_path, read_card
from jarvis.serving.engine import Adapter, Engine
from jarvis.store import Store
from jarvis.training.generate import answer_cap


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
    """The router's student backend: the serving engine with each task's active version."""

    def __init__(self, settings: Settings, store: Store, engine: Engine | None = None) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine or Engine(settings)
        self._max_new: dict[str, int] = {}  # per version: a cap near its longest answer

    def active_version(self, task: str) -> str | None:
        # read on every call (one indexed row): a promotion or rollback made by the worker,
        # the API or the CLI is served from the very next request, in every process
        return self.store.versions.active(task)

    def _cap(self, task: str, version: str) -> int:
        name = f"{task}@{version}"
        if name not in self._max_new:
            card = read_card(self.settings.models_dir, task, version)
            longest = int(card.get("train", {}).get("max_answer_tokens") or 0)
            # an answer much longer than any it was trained on is a runaway: stop early
            self._max_new[name] = answer_cap(longest) if longest else self.settings.max_tokens
        return self._max_new[name]

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        task = request.task
        try:
            max_new = min(
                request.sampling.max_tokens or self.settings.max_tokens,
                self._cap(task.name, version),
            )
            adapter = Adapter(
                f"{task.name}@{version}", adapter_path(self.settings.models_dir, task.name, version)
            )
            out = self.engine.generate(
                task,
                request.inputs,
                adapter=adapter,
                sampling=request.sampling,
                max_new_tokens=max_new,
                constrained=self.settings.constrained,
            )
        except JarvisError as exc:
            raise BackendError(f"student {task.name}@{version}: {exc}") from exc
        return Generation(
            text=out.text,
            model=f"{self.settings.base_model}+{task.name}@{version}",
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
            finished=out.finished,
        )
