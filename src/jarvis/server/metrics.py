"""Prometheus metrics, in the text exposition format, without a client library.

A handful of counters and one histogram are all the server needs; keeping them here (one lock,
plain dicts) avoids a process-global registry and keeps tests independent of each other.
"""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Labels = tuple[tuple[str, str], ...]


def _labels(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


def _fmt(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, int] = defaultdict(int)
        self._latency: dict[Labels, list[int]] = {}
        self._latency_sum: dict[Labels, float] = defaultdict(float)
        self._latency_count: dict[Labels, int] = defaultdict(int)
        self._calls: dict[Labels, int] = defaultdict(int)
        self._fallbacks: dict[Labels, int] = defaultdict(int)
        self._tokens: dict[Labels, int] = defaultdict(int)
        self._rejected: dict[Labels, int] = defaultdict(int)
        self.in_flight = 0

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[_labels(route=route, status=str(status))] += 1
            key = _labels(route=route)
            buckets = self._latency.setdefault(key, [0] * len(LATENCY_BUCKETS))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self._latency_sum[key] += seconds
            self._latency_count[key] += 1

    def observe_call(
        self, task: str, source: str, fallback: bool, tokens_in: int, tokens_out: int
    ) -> None:
        with self._lock:
            self._calls[_labels(task=task, source=source)] += 1
            if fallback:
                self._fallbacks[_labels(task=task)] += 1
            self._tokens[_labels(task=task, kind="prompt")] += tokens_in
            self._tokens[_labels(task=task, kind="completion")] += tokens_out

    def reject(self, reason: str) -> None:
        with self._lock:
            self._rejected[_labels(reason=reason)] += 1

    def render(self) -> str:
        with self._lock:
            lines: list[str] = []

            def counter(name: str, help_: str, values: dict[Labels, int]) -> None:
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} counter")
                lines.extend(f"{name}{_fmt(k)} {v}" for k, v in sorted(values.items()))

            counter("jarvis_requests_total", "HTTP requests by route and status.", self._requests)
            lines.append("# HELP jarvis_request_seconds Request latency by route.")
            lines.append("# TYPE jarvis_request_seconds histogram")
            for key, buckets in sorted(self._latency.items()):
                for bound, count in zip(LATENCY_BUCKETS, buckets, strict=True):
                    le = _fmt((*key, ("le", str(bound))))
                    lines.append(f"jarvis_request_seconds_bucket{le} {count}")
                inf = _fmt((*key, ("le", "+Inf")))
                lines.append(f"jarvis_request_seconds_bucket{inf} {self._latency_count[key]}")
                lines.append(f"jarvis_request_seconds_sum{_fmt(key)} {self._latency_sum[key]}")
                lines.append(f"jarvis_request_seconds_count{_fmt(key)} {self._latency_count[key]}")
            counter("jarvis_calls_total", "Typed calls by task and answering source.", self._calls)
            counter(
                "jarvis_fallbacks_total",
                "Calls the teacher answered after the student failed.",
                self._fallbacks,
            )
            counter("jarvis_tokens_total", "Tokens read and written by task.", self._tokens)
            counter("jarvis_rejected_total", "Requests refused before any work.", self._rejected)
            lines.append(
                "# HELP jarvis_student_share Share of a task's calls the student answered."
            )
            lines.append("# TYPE jarvis_student_share gauge")
            totals: dict[str, int] = defaultdict(int)
            students: dict[str, int] = defaultdict(int)
            for key, value in self._calls.items():
                labels = dict(key)
                totals[labels["task"]] += value
                if labels["source"] == "student":
                    students[labels["task"]] += value
            for task, total in sorted(totals.items()):
                share = students[task] / total if total else 0.0
                lines.append(f"jarvis_student_share{_fmt(_labels(task=task))} {share:.6f}")
            lines.append("# HELP jarvis_in_flight Model requests being served or queued.")
            lines.append("# TYPE jarvis_in_flight gauge")
            lines.append(f"jarvis_in_flight {self.in_flight}")
            return "\n".join(lines) + "\n"
