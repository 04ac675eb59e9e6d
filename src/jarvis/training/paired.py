"""Is a candidate worse than the active version on the same examples, beyond noise?

Two versions answer the same held-out examples, each answer right or wrong. Comparing the two
rates alone mistakes noise for a difference: on 40 examples, 95% and 92.5% differ by one
answer. McNemar's test looks only at the *discordant* examples (one version right, the other
wrong): if the candidate were as good, each discordant example would go either way with
probability 1/2, so the number the candidate loses is binomial(n, 1/2). The exact one-sided
test (``scipy.stats.binomtest``) says how unlikely that many losses are.

Free-text answers are scored (chrF), not right or wrong: :func:`sign_test` does the same on
the examples where the two scores differ (which version came closer to the teacher).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CONFIDENCE", "PairedTest", "mcnemar", "sign_test"]

CONFIDENCE = 0.95
"""A candidate is refused when it is worse with this confidence (one-sided p < 0.05)."""


@dataclass(frozen=True, slots=True)
class PairedTest:
    examples: int  # examples both versions answered
    candidate_only: int  # right by the candidate only
    active_only: int  # right by the active version only
    p_worse: float  # one-sided p-value of "the candidate is as good" given its losses
    worse: bool  # worse with CONFIDENCE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, what: str) -> str:
        return (
            f"{what}: on {self.examples} shared examples the candidate alone is right on "
            f"{self.candidate_only}, the active version alone on {self.active_only} "
            f"(McNemar one-sided p = {self.p_worse:.3f})"
        )


def mcnemar(
    candidate: Sequence[bool], active: Sequence[bool], *, confidence: float = CONFIDENCE
) -> PairedTest:
    """Exact McNemar test of "the candidate is worse" on paired right/wrong outcomes."""
    # lazy: scipy comes with the train extra, and only the gate needs it
    from scipy.stats import binomtest

    if len(candidate) != len(active):
        raise ValueError("paired outcomes must be for the same examples")
    cand_only = sum(1 for c, a in zip(candidate, active, strict=True) if c and not a)
    act_only = sum(1 for c, a in zip(candidate, active, strict=True) if a and not c)
    n = cand_only + act_only
    p = 1.0 if n == 0 else float(binomtest(act_only, n, 0.5, alternative="greater").pvalue)
    return PairedTest(len(candidate), cand_only, act_only, p, p < 1.0 - confidence)


def sign_test(
    candidate: Sequence[float], active: Sequence[float], *, confidence: float = CONFIDENCE
) -> PairedTest:
    """Exact sign test of "the candidate scores lower" on paired scores of the same examples
    (``candidate_only``: examples where the candidate scored higher)."""
    if len(candidate) != len(active):
        raise ValueError("paired scores must be for the same examples")
    higher = [c > a + 1e-9 for c, a in zip(candidate, active, strict=True)]
    lower = [a > c + 1e-9 for c, a in zip(candidate, active, strict=True)]
    return mcnemar(higher, lower, confidence=confidence)
