"""The held-out gate: does a trained candidate say what the teacher says, and is it not worse
than the version serving now?

A candidate answers the task's held-out examples (never trained on). Every answer is judged by
the validator the router uses at run time, then compared with the teacher's answer the task's
way (:func:`jarvis.core.agreement.compare_answers`: every field for typed tasks, chrF for free
text, validity alone for tasks whose teacher is random). A valid answer that differs from the
teacher's is a failure here. The candidate is promoted only when

* its validity clears ``gate_floor`` and its agreement clears ``agreement_floor``
  (free text: its mean chrF also clears ``text_gate_floor``), and
* it is not worse than the active version on the same examples by an exact McNemar test
  (:mod:`jarvis.training.paired`): a difference of one or two answers is noise, not a verdict.

Each answer's confidence (the lowest probability of a token the student chose) and whether it
agreed calibrate the version's confidence threshold (:mod:`jarvis.training.calibration`): the
router sends answers below it to the teacher. The candidate answers through the serving
engine, as serving will (:func:`engine_answerer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jarvis.core.agreement import TEXT_METRIC, compare_answers, field_agreement, text_scorer
from jarvis.core.backends import GREEDY
from jarvis.core.codec import student_answer
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.registry import Adapter
from jarvis.serving.engine import Engine, answer_cap
from jarvis.store import Store
from jarvis.training.calibration import calibrate
from jarvis.training.paired import PairedTest, mcnemar, sign_test

Answered = tuple[str, int, float | None]
"""One answer: (text, tokens generated, confidence or None)."""

Answerer = Callable[[Sequence[dict[str, Any]]], list[Answered]]
"""Answers a batch of inputs."""


@dataclass(frozen=True)
class GateConfig:
    """One task's gate (from its settings: ``gate_floor``, ``agreement_floor``,
    ``text_gate_floor``, ``gate_examples``, ``target_agreement``)."""

    floor: float = 0.9
    text_floor: float = 0.5
    examples: int = 40
    min_examples: int = 20
    """Fewer held-out examples than this prove nothing: the candidate is not promoted."""
    agreement_floor: float = 0.8
    """The share of held-out answers that must agree with the teacher's."""
    target_agreement: float = 0.98
    """The agreement the confidence threshold is calibrated for."""


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
    agreement: float | None = None  # share of answers that agree with the teacher's
    compare: str = "fields"  # how (the task's compare mode)
    answers: list[dict[str, Any]] = field(default_factory=list)
    """Per example: id, valid, agrees, confidence: the paired test and the calibration."""
    calibration: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def outcomes(self, key: str) -> dict[Any, bool]:
        """``valid`` or ``agrees`` per example id."""
        return {a["id"]: bool(a[key]) for a in self.answers}

    def scores(self) -> dict[Any, float]:
        """How close each answer came to the teacher's, per example id."""
        return {a["id"]: float(a.get("score") or 0.0) for a in self.answers}


def evaluate(
    task: Task[Any],
    heldout: Sequence[dict[str, Any]],
    answer: Answerer,
    *,
    batch_size: int = 8,
    budget: int | None = None,
    target_agreement: float = 0.98,
) -> GateReport:
    """Answer every held-out example with ``answer``, judge it with the task's validator and
    compare it with the teacher's answer.

    ``budget`` is the most tokens ``answer`` may generate: an answer that used all of them was
    cut off, which fails a free-text answer as it would at run time.
    """
    started = time.perf_counter()
    n = len(heldout)
    fmt = sem = 0
    fields_score: list[float] = []
    exact = 0
    tokens = 0
    similarity: list[float] = []
    chrf = text_scorer() if task.is_free_text else None
    failures: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    for start in range(0, n, batch_size):
        rows = heldout[start : start + batch_size]
        inputs = [task.load_inputs(r["input"]) for r in rows]
        for row, inp, (text, n_tokens, conf) in zip(rows, inputs, answer(inputs), strict=True):
            tokens += n_tokens
            cut = budget is not None and n_tokens >= budget
            verdict = validate_answer(task, inp, text, truncated=cut)
            fmt += verdict.stage != "format"
            sem += verdict.valid
            got = None if verdict.output is None else task.dump_output(verdict.output)
            if chrf is not None:  # every free-text answer is scored: a loop scores low anyway
                similarity.append(chrf(text.strip(), str(row["output"]).strip()))
            else:
                fields_score.append(0.0 if got is None else field_agreement(got, row["output"]))
                exact += got is not None and got == row["output"]
            same = compare_answers(task, got, row["output"], inp, valid=verdict.valid, chrf=chrf)
            answers.append(
                {
                    "id": row.get("id"),
                    "valid": verdict.valid,
                    "agrees": same.agrees,
                    "score": round(same.score, 4),
                    "confidence": None if conf is None else round(conf, 6),
                }
            )
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
    agreeing = sum(a["agrees"] for a in answers)
    confident = [a for a in answers if a["confidence"] is not None]
    calibration = (
        calibrate(
            [a["confidence"] for a in confident], [a["agrees"] for a in confident], target_agreement
        ).as_dict()
        if confident and len(confident) == n
        else None
    )
    return GateReport(
        examples=n,
        format_pass=fmt / n if n else 0.0,
        semantic_pass=sem / n if n else 0.0,
        field_agreement=sum(fields_score) / n if typed and n else None,
        exact_match=exact / n if typed and n else None,
        tokens_out_mean=tokens / n if n else 0.0,
        seconds=time.perf_counter() - started,
        failures=failures,
        text_similarity=sum(similarity) / n if chrf is not None and n else None,
        text_metric=TEXT_METRIC if chrf is not None else None,
        agreement=agreeing / n if n else None,
        compare=task.compare,
        answers=answers,
        calibration=calibration,
    )


@dataclass(frozen=True)
class GateVerdict:
    promote: bool
    reason: str
    paired: dict[str, Any] = field(default_factory=dict)
    """The McNemar tests against the active version, by what they compared."""

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason, "paired": self.paired}


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

    ``floor`` applies to the semantic pass rate; ``agreement_floor`` (when given) to the share
    of answers that agree with the teacher's; ``text_floor`` to the mean free-text similarity,
    when the candidate has one. "Not worse" is an exact McNemar test of validity and of
    agreement on the held-out examples both versions answered. Fewer than ``min_examples``
    held-out examples judge nothing.
    """
    if candidate.examples == 0:
        return GateVerdict(False, "no held-out examples to judge the candidate on")
    if candidate.examples < min_examples:
        return GateVerdict(
            False,
            f"only {candidate.examples} held-out examples: at least {min_examples} are needed "
            "to judge a candidate (JARVIS_GATE_MIN_EXAMPLES)",
        )
    if candidate.semantic_pass < floor:
        return GateVerdict(
            False, f"semantic pass {candidate.semantic_pass:.1%} is below the floor {floor:.1%}"
        )
    agreement = candidate.agreement if candidate.agreement is not None else 0.0
    if agreement_floor is not None and agreement < agreement_floor:
        return GateVerdict(
            False,
            f"agreement with the teacher ({candidate.compare}) {agreement:.1%} is below the "
            f"floor {agreement_floor:.1%}: valid answers that differ from the teacher's are "
            "not good enough",
        )
    similarity = candidate.text_similarity
    metric = candidate.text_metric or "text similarity"
    if similarity is not None and similarity < text_floor:
        return GateVerdict(
            False, f"{metric} {similarity:.3f} is below the text floor {text_floor:.3f}"
        )
    paired: dict[str, Any] = {}
    if active is not None:
        for key, what, test in _paired_tests(candidate, active):
            paired[key] = test.as_dict()
            if test.worse:
                return GateVerdict(
                    False, f"worse than the active version: {test.describe(what)}", paired
                )
    reason = f"semantic pass {candidate.semantic_pass:.1%} ≥ floor {floor:.1%}"
    if agreement_floor is not None:
        reason += f"; agreement {agreement:.1%} ≥ floor {agreement_floor:.1%}"
    if similarity is not None:
        reason += f"; {metric} {similarity:.3f} ≥ floor {text_floor:.3f}"
    if "score" in paired or "agrees" in paired:
        t = paired.get("score") or paired["agrees"]
        reason += (
            f"; not worse than the active version (McNemar p = {t['p_worse']:.3f}, "
            f"{t['candidate_only']} won / {t['active_only']} lost)"
        )
    return GateVerdict(True, reason, paired)


def _paired_tests(candidate: GateReport, active: GateReport) -> list[tuple[str, str, PairedTest]]:
    """The candidate against the active version on the examples both answered: McNemar on
    validity and agreement; for free text, a sign test on the chrF scores as well."""
    tests = []
    for key, what in (("valid", "validity"), ("agrees", "agreement")):
        mine, theirs = candidate.outcomes(key), active.outcomes(key)
        shared = [i for i in mine if i in theirs]
        if shared:
            tests.append(
                (key, what, mcnemar([mine[i] for i in shared], [theirs[i] for i in shared]))
            )
    if candidate.text_metric is not None:
        mine_s, theirs_s = candidate.scores(), active.scores()
        shared = [i for i in mine_s if i in theirs_s]
        if shared:
            test = sign_test([mine_s[i] for i in shared], [theirs_s[i] for i in shared])
            tests.append(("score", candidate.text_metric, test))
    return tests


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

    def answer(batch: Sequence[dict[str, Any]]) -> list[Answered]:
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
        return [(o.text, o.tokens_out, o.confidence) for o in outs]

    return answer


def evaluate_version(
    store: Store,
    engine: Engine,
    task: Task[Any],
    adapter: Adapter,
    limit: int,
    target_agreement: float = 0.98,
) -> GateReport:
    """Run the gate on demand: ``adapter`` (a version of ``task``) on its held-out sample."""
    heldout = heldout_sample(store, task.name, limit)
    rows = list(store.iter_examples(task.name, "train"))[:50]
    cap = max_new_tokens(task, heldout + rows, engine.tokenizer)
    answer = engine_answerer(engine, task, adapter, cap)
    return evaluate(task, heldout, answer, budget=cap, target_agreement=target_agreement)
