"""Continuous batching: many answers decode together, one forward pass per step.

Callers (the router's threads, the API's) hand a :class:`~.decode.Decoding` to
:meth:`Batcher.run` and wait. One scheduler thread owns the llama.cpp context
(:class:`~.llama_batch.LlamaBatchLM`) and loops:

1. **admit** waiting answers into free slots, reusing each slot's cached prompt prefix; a
   request that arrives mid-batch joins at the next step instead of waiting for the others;
2. ask every answer what it needs (its grammar's forced text is written without the model);
3. **one forward pass** for the answers under one adapter (LoRA is set per context, so adapters
   take turns, round robin): each reads its new tokens (the last choice, forced text, or its
   prompt; oldest first, about ``max_step_tokens`` a step) and gets its own logits back. A
   sequence's tokens of one step are never split, and each sequence's logits do not depend on
   what else is in the pass, so an answer is bit for bit the answer it gets alone;
4. each answer picks its next token with its own matcher, sampling, seed and steering.

An answer whose caller went away (its stream callback raises) ends at its next token and frees
its slot; a failed forward pass fails the answers in it with :class:`BackendError`, which the
router treats like any student failure (retry, then the teacher).

Hand-written because the scheduling is JARVIS's own (per-answer grammars and steering between
forward passes); llama.cpp's server and vLLM schedule the same way but as servers, not as a
loop a Python program can put its own decoding into.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from jarvis.core.errors import BackendError
from jarvis.serving.decode import Decoded, Decoding, Need
from jarvis.serving.llama_batch import LlamaBatchLM, Read

__all__ = ["BatchCounts", "Batcher"]

log = logging.getLogger(__name__)


class BatchCounts(NamedTuple):
    """What the batch has done so far, for ``/metrics``: per pass, ``answers / steps`` is the
    mean occupancy and ``tokens / steps`` the mean tokens read (prompts and forced text count
    here too: a pass full of prompt tokens is compute-bound however few answers it carries)."""

    active: int = 0  # answers decoding now
    steps: int = 0  # forward passes
    answers: int = 0  # answers those passes carried, summed
    tokens: int = 0  # tokens those passes read, summed
    forward_seconds: float = 0.0  # time inside the forward passes


@dataclass(eq=False)
class _Job:
    decoding: Decoding
    prompt: list[int]
    adapter: str | None
    adapter_file: Path | None
    order: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    slot: int = -1
    read: int = 0  # how many of the current need's tokens the model has read


class Batcher:
    def __init__(self, lm: LlamaBatchLM, *, name: str = "jarvis-batcher") -> None:
        self.lm = lm
        self._waiting: deque[_Job] = deque()
        self._active: list[_Job] = []
        self._free = list(range(lm.slots))
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._last_adapter: str | None = None
        self._closed = False
        # what the passes so far did; replaced whole after each pass, so a scrape from another
        # thread reads one pass's totals, never half of two
        self._totals = BatchCounts()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def active(self) -> int:
        """Answers decoding now (their slots are taken)."""
        return len(self._active)

    def counts(self) -> BatchCounts:
        """The passes' totals so far, with the answers decoding now."""
        return self._totals._replace(active=len(self._active))

    def run(
        self, decoding: Decoding, prompt: list[int], adapter: str | None, adapter_file: Path | None
    ) -> Decoded:
        """Decode ``decoding`` together with whatever else is running; block until it ends.

        ``adapter_file``: the adapter's GGUF, loaded into the context on first use.
        """
        job = _Job(decoding, prompt, adapter, adapter_file, next(self._order))
        with self._wake:
            if self._closed:
                raise BackendError("the engine is closed")
            self._waiting.append(job)
            self._wake.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return decoding.result()

    def close(self) -> None:
        """Fail what is waiting or running, stop the scheduler, free the context."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)
        self.lm.close()

    # -- the scheduler thread ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self._active:
                    self._wake.wait()
                if self._closed:
                    break
                admitted = self._take_waiting()
            for job in admitted:
                self._admit(job)
            try:
                self._step()
            except Exception as exc:  # a bug here must not leave callers waiting forever
                log.exception("batcher step failed")
                for job in list(self._active):
                    self._finish(job, BackendError(f"batched decoding failed: {exc}"), lost=True)
        for job in [*self._active, *self._waiting]:
            self._finish(job, BackendError("the engine is closed"), lost=True)

    def _take_waiting(self) -> list[_Job]:
        taken: list[_Job] = []
        while self._waiting and len(self._free) > len(taken):
            taken.append(self._waiting.popleft())
        return taken

    def _admit(self, job: _Job) -> None:
        try:
            if job.adapter is not None and not self.lm.has_adapter(job.adapter):
                assert job.adapter_file is not None
                self.lm.load_adapter(job.adapter, job.adapter_file)
            slot, cached = self.lm.claim(self._free, job.adapter, job.prompt)
        except Exception as exc:
            job.error = exc if isinstance(exc, BackendError) else BackendError(str(exc))
            job.done.set()
            return
        self._free.remove(slot)
        job.slot, job.read = slot, cached  # the prompt's cached prefix is not read again
        self._active.append(job)

    def _step(self) -> None:
        needs: dict[_Job, Need] = {}
        for job in list(self._active):
            try:
                need = job.decoding.want()  # forced text is written here, without the model
            except Exception as exc:  # the caller's stream went away
                self._finish(job, exc)
                continue
            if need is None:
                self._finish(job, None)
            elif len(need.tokens) - job.read > self.lm.room(job.slot):
                job.decoding.stop()  # the slot is full: the answer ends unfinished
                self._finish(job, None)
            else:
                needs[job] = need
        if not needs:
            return
        adapter = self._next_adapter({job.adapter for job in needs})
        group = sorted((job for job in needs if job.adapter == adapter), key=lambda j: j.order)
        reads: list[Read] = []
        rows = []
        members: list[_Job] = []
        step = self.lm.max_step_tokens
        budget = step
        for job in group:  # oldest first; a read that starts within the budget is taken whole
            if budget <= 0:
                break
            need = needs[job]
            remaining = need.tokens[job.read :]
            take = remaining[:step]  # a long prompt in chunks, cut where the serial path cuts
            reads.append(Read(job.slot, take, logits=len(take) == len(remaining)))
            rows.append(need.asked)
            members.append(job)
            budget -= len(take)
        started = time.perf_counter()
        try:
            self.lm.use_adapter(adapter)
            results = self.lm.forward(reads, rows)
        except Exception as exc:  # fails the answers in this pass, not the others
            error = exc if isinstance(exc, BackendError) else BackendError(str(exc))
            for job in members:
                self._finish(job, error, lost=True)
            return
        t = self._totals
        self._totals = t._replace(
            steps=t.steps + 1,
            answers=t.answers + len(members),
            tokens=t.tokens + sum(len(read.tokens) for read in reads),
            forward_seconds=t.forward_seconds + time.perf_counter() - started,
        )
        for job, read, logits in zip(members, reads, results, strict=True):
            job.read += len(read.tokens)
            if logits is None:
                continue
            job.read = 0
            try:
                job.decoding.give(logits)  # the stream callback may raise: the caller left
            except Exception as exc:
                self._finish(job, exc)

    def _next_adapter(self, present: set[str | None]) -> str | None:
        """Round robin over the adapters with work, so no task waits behind another."""
        order = sorted(present, key=_turn)
        later = [a for a in order if _turn(a) > _turn(self._last_adapter)]
        chosen = later[0] if later else order[0]
        self._last_adapter = chosen
        return chosen

    def _finish(self, job: _Job, error: BaseException | None, *, lost: bool = False) -> None:
        if job in self._active:
            self._active.remove(job)
            if lost:
                self.lm.forget(job.slot)  # its cells' content is unknown
            self._free.append(job.slot)
        if error is not None:
            job.decoding.stop()
            job.error = error
        job.done.set()


def _turn(adapter: str | None) -> tuple[bool, str]:
    """The adapters' order in the round robin: the bare base first, then by name."""
    return (adapter is not None, adapter or "")
