"""The local student: one base model in memory, one LoRA adapter per task, in this process.

The router asks :meth:`LocalStudent.active_version` on every call; the answer comes from the
store, so a version promoted by the worker, or a rollback, is picked up by the next calls
without a restart. The serving engine (:mod:`jarvis.serving.engine`) loads each adapter on
first use and keeps it; nothing heavy is imported until a student answers.
"""

from __future__ import annotations

import random

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.errors import BackendError, JarvisError
from jarvis.registry import Registry
from jarvis.serving.engine import Engine, answer_cap

__all__ = ["LocalStudent"]


class LocalStudent:
    """The router's student backend: the serving engine with each task's active version."""

    def __init__(self, registry: Registry, engine: Engine, *, max_tokens: int = 1024) -> None:
        self.registry = registry
        self.engine = engine
        self.max_tokens = max_tokens
        self._max_new: dict[str, int] = {}  # per version: a cap near its longest answer
        self._draw = random.Random()  # which calls a canary answers

    def active_version(self, task: str) -> str | None:
        # read on every call (one indexed row): a promotion, a rollback or a canary made by
        # the worker, the API or the CLI is served from the very next request, in every process
        return self.registry.serving_version(task, self._draw.random())

    def _cap(self, task: str, version: str) -> int:
        name = f"{task}@{version}"
        if name not in self._max_new:
            card = self.registry.card(task, version)
            longest = int(card.get("train", {}).get("max_answer_tokens") or 0)
            # an answer much longer than any it was trained on is a runaway: stop early
            self._max_new[name] = answer_cap(longest) if longest else self.max_tokens
        return self._max_new[name]

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        task = request.task
        try:
            max_new = min(
                request.sampling.max_tokens or self.max_tokens, self._cap(task.name, version)
            )
            adapter = self.registry.adapter(task.name, version)
            out = self.engine.generate(
                task,
                request.inputs,
                adapter=adapter,
                sampling=request.sampling,
                max_new_tokens=max_new,
                constrained=self.engine.config.constrained,
            )
        except JarvisError as exc:
            raise BackendError(f"student {task.name}@{version}: {exc}") from exc
        return Generation(
            text=out.text,
            model=f"{self.engine.config.base.spec}+{adapter.name}",
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
            finished=out.finished,
            confidence=out.confidence,
        )
