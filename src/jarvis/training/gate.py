"""The held-out gate: is a trained candidate good enough to serve, and not worse than now?

A candidate answers the task's held-out examples (never trained on) and every answer is judged
by the same validator the router uses at run time. It is promoted only if its semantic pass
rate clears the task's floor and is not below the active version's on the same examples.

A free-text answer parses whatever it says, so passing the validator (non-empty, no loop,
within the task's length) is not enough there: the gate also scores how close each answer is
to the teacher's, as chrF (character n-gram F-score, Popović 2015, computed by sacrebleu) on a
0..1 scale, and the mean must clear ``text_gate_floor`` and not fall below the active
version's on the same examples (:mod:`jarvis.core.agreement`).

The candidate answers through the serving engine, as serving will (:func:`engine_answerer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jarvis.core.agreement import TEXT_METRIC, field_agreement, text_scorer
from jarvis.core.backends import GREEDY
from jarvis.core.codec import student_answer
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.registry import Adapter
from jarvis.serving.engine import Engine, answer_cap
from jarvis.store import Store

Answerer = Callable[[Sequence[dict[str, Any]]], list[tuple[str, int]]]
"""Answers a batch of inputs: one (text, tokens generated) per input."""


@dataclass(frozen=True)
class GateConfig:
    """One task's gate (from its settings: ``gate_floor``, ``text_gate_floor``,
    ``gate_examples``)."""

    floor: float = 0.9
    text_floor: float = 0.5
    examples: int = 40
    min_examples: int = 20
    """Fewer held-out examples than this prove nothing: the candidate is not promoted."""


@dataclass
class GateReport:
    examples: int
    format_pass: float
    semantic_pass: float
    field_agreement: float | None
    exact_match: float | None
    tokens_out_mean: float
    seconds: float
    failures: list[dict[str, Any]] = field(default_factory=list)
    text_similarity: float | None = None  # free text: mean similarity to the teacher, 0..1
    text_metric: str | None = None  # … and what measured it (TEXT_METRIC)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    task: Task[Any],
    heldout: Sequence[dict[str, Any]],
    answer: Answerer,
    *,
    batch_size: int = 8,
    budget: int | None = None,
) -> GateReport:
    """Answer every held-out example with ``answer`` and judge it with the task's validator.

    ``budget`` is the most tokens ``answer`` may generate: an answer that used all of them was
    cut off, which fails a free-text answer as it would at run time. Free-text answers are
    also scored against the teacher's (every answer, valid or not: a loop scores low anyway).
    """
    started = time.perf_counter()
    n = len(heldout)
    fmt = sem = 0
    agreement: list[float] = []
    exact = 0
    tokens = 0
    similarity: list[float] = []
    score = text_scorer() if task.is_free_text else None
    failures: list[dict[str, Any]] = []
    for start in range(0, n, batch_size):
        rows = heldout[start : start + batch_size]
        inputs = [task.load_inputs(r["input"]) for r in rows]
        for row, inp, (text, n_tokens) in zip(rows, inputs, answer(inputs), strict=True):
            tokens += n_tokens
            cut = budget is not None and n_tokens >= budget
            verdict = validate_answer(task, inp, text, truncated=cut)
            fmt += verdict.stage != "format"
            sem += verdict.valid
            if score is not None:
                similarity.append(score(text.strip(), str(row["output"])))
            if verdict.output is not None and not task.is_free_text:
                got = task.dump_output(verdict.output)
                agreement.append(field_agreement(got, row["output"]))
                exact += got == row["output"]
            elif not task.is_free_text:
                agreement.append(0.0)
            if not verdict.valid and len(failures) < 10:
                failures.append(
                    {
                        "example_id": row.get("id"),
                        "stage": verdict.stage,
                        "reason": verdict.reason,
                        "answer": text[:300],
                    }
                )
    typed = not task.is_free_text
    return GateReport(
        examples=n,
        format_pass=fmt / n if n else 0.0,
        semantic_pass=sem / n if n else 0.0,
        field_agreement=sum(agreement) / len(agreement) if typed and agreement else None,
        exact_match=exact / n if typed and n else None,
        tokens_out_mean=tokens / n if n else 0.0,
        seconds=time.perf_counter() - started,
        failures=failures,
        text_similarity=sum(similarity) / n if score is not None and n else None,
        text_metric=TEXT_METRIC if score is not None else None,
    )


@dataclass(frozen=True)
class GateVerdict:
    promote: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason}


def decide(
    candidate: GateReport,
    active: GateReport | None,
    floor: float,
    *,
    text_floor: float = 0.0,
    min_examples: int = 1,
    agreement_floor: float | None = None,
) -> GateVerdict:
    """Promote only a candidate that clears the floors and is not worse than the active one.

    ``floor`` applies to the semantic pass rate; ``text_floor`` to the free-text similarity,
    when the candidate has one; ``agreement_floor`` (when given) to the field agreement with
    the teacher's answers, for tasks whose validator proves little (a task known only by a
    schema: any answer of the right shape parses). "Not worse" is judged on the same
    held-out examples. Fewer than ``min_examples`` held-out examples judge nothing.
    """
    if candidate.examples == 0:
        return GateVerdict(False, "no held-out examples to judge the candidate on")
    if candidate.examples < min_examples:
        return GateVerdict(
            False,
            f"only {candidate.examples} held-out examples: at least {min_examples} are needed "
            "to judge a candidate (JARVIS_GATE_MIN_EXAMPLES)",
        )
    agreement = candidate.field_agreement
    if agreement_floor is not None and (agreement or 0.0) < agreement_floor:
        return GateVerdict(
            False,
            f"field agreement with the teacher {agreement or 0.0:.1%} is below the floor "
            f"{agreement_floor:.1%}",
        )
    if candidate.semantic_pass < floor:
        return GateVerdict(
            False, f"semantic pass {candidate.semantic_pass:.1%} is below the floor {floor:.1%}"
        )
    if active is not None and candidate.semantic_pass < active.semantic_pass:
        return GateVerdict(
            False,
            f"semantic pass {candidate.semantic_pass:.1%} is below the active version's "
            f"{active.semantic_pass:.1%} on the same held-out examples",
        )
    vs = f" (active: {active.semantic_pass:.1%})" if active is not None else ""
    reason = f"semantic pass {candidate.semantic_pass:.1%} ≥ floor {floor:.1%}{vs}"
    similarity = candidate.text_similarity
    if similarity is None:
        return GateVerdict(True, reason)
    metric = candidate.text_metric or "text similarity"
    if similarity < text_floor:
        return GateVerdict(
            False, f"{metric} {similarity:.3f} is below the text floor {text_floor:.3f}"
        )
    theirs = active.text_similarity if active is not None else None
    if theirs is not None and similarity < theirs:
        return GateVerdict(
            False,
            f"{metric} {similarity:.3f} is below the active version's {theirs:.3f} "
            "on the same held-out examples",
        )
    vs = f" (active: {theirs:.3f})" if theirs is not None else ""
    return GateVerdict(True, f"{reason}; {metric} {similarity:.3f} ≥ floor {text_floor:.3f}{vs}")


def heldout_sample(store: Store, task: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` held-out examples: the same set for every candidate of a task."""
    rows = []
    for row in store.iter_examples(task, "heldout"):
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def max_new_tokens(task: Task[Any], rows: list[dict[str, Any]], tokenizer: Any) -> int:
    """Room for the longest teacher answer seen, with a margin."""
    longest = 16
    for row in rows:
        answer = student_answer(task, task.output_adapter.validate_python(row["output"]))
        longest = max(longest, len(tokenizer(answer).input_ids))
    return answer_cap(longest)


def engine_answerer(
    engine: Engine, task: Task[Any], adapter: Adapter, max_new_tokens: int
) -> Answerer:
    """A greedy answerer through the serving engine: the gate judges what serving will do."""

    def answer(batch: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
        outs = [
            engine.generate(
                task,
                inputs,
                adapter=adapter,
                sampling=GREEDY,
                max_new_tokens=max_new_tokens,
                constrained=engine.config.constrained,
            )
            for inputs in batch
        ]
        return [(o.text, o.tokens_out) for o in outs]

    return answer


def evaluate_version(
    store: Store, engine: Engine, task: Task[Any], adapter: Adapter, limit: int
) -> GateReport:
    """Run the gate on demand: ``adapter`` (a version of ``task``) on its held-out sample."""
    heldout = heldout_sample(store, task.name, limit)
    rows = list(store.iter_examples(task.name, "train"))[:50]
    cap = max_new_tokens(task, heldout + rows, engine.tokenizer)
    return evaluate(task, heldout, engine_answerer(engine, task, adapter, cap), budget=cap)
