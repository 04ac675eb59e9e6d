"""Prometheus metrics for one app, on ``prometheus-client``.

Each app gets its own :class:`CollectorRegistry` (not the library's process-global one), so two
servers in one process, or two tests, never share counts. The registry also carries the process
collector (CPU, memory, open files: the standard ``process_*`` series).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jarvis.serving.batcher import BatchCounts

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The server's counters; ``in_flight`` is read by admission, so it stays a plain int."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self._requests = Counter(
            "jarvis_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "jarvis_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._calls = Counter(
            "jarvis_calls",
            "Typed calls by task and answering source.",
            ["task", "source"],
            registry=self.registry,
        )
        self._fallbacks = Counter(
            "jarvis_fallbacks",
            "Calls the teacher answered after the student failed.",
            ["task"],
            registry=self.registry,
        )
        self._tokens = Counter(
            "jarvis_tokens",
            "Tokens read and written by task.",
            ["task", "kind"],
            registry=self.registry,
        )
        self._rejected = Counter(
            "jarvis_rejected",
            "Requests refused before any work.",
            ["reason"],
            registry=self.registry,
        )
        self._share = Gauge(
            "jarvis_student_share",
            "Share of a task's calls the student answered.",
            ["task"],
            registry=self.registry,
        )
        in_flight = Gauge(
            "jarvis_in_flight", "Model requests being served or queued.", registry=self.registry
        )
        in_flight.set_function(lambda: self.in_flight)
        self._lock = threading.Lock()
        self._totals: dict[str, int] = defaultdict(int)
        self._students: dict[str, int] = defaultdict(int)
        self.in_flight = 0

    def watch_batch(self, read: Callable[[], BatchCounts]) -> None:
        """The student engine's continuous batch, read at scrape time from ``read()``."""
        self.registry.register(_BatchCollector(read))

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self._requests.labels(route=route, status=str(status)).inc()
        self._latency.labels(route=route).observe(seconds)

    def observe_call(
        self, task: str, source: str, fallback: bool, tokens_in: int, tokens_out: int
    ) -> None:
        self._calls.labels(task=task, source=source).inc()
        if fallback:
            self._fallbacks.labels(task=task).inc()
        self._tokens.labels(task=task, kind="prompt").inc(tokens_in)
        self._tokens.labels(task=task, kind="completion").inc(tokens_out)
        with self._lock:  # the share is a ratio of two counts that must move together
            self._totals[task] += 1
            self._students[task] += source == "student"
            self._share.labels(task=task).set(self._students[task] / self._totals[task])

    def reject(self, reason: str) -> None:
        self._rejected.labels(reason=reason).inc()

    def render(self) -> bytes:
        """The exposition, text format 0.0.4 (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _BatchCollector(Collector):
    def __init__(self, read: Callable[[], BatchCounts]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        active, steps, answers, tokens, forward_seconds = self.read()
        yield GaugeMetricFamily(
            "jarvis_batch_active", "Answers decoding together in the engine now.", value=active
        )
        yield CounterMetricFamily(
            "jarvis_batch_steps", "Forward passes of the engine's batch.", value=steps
        )
        yield CounterMetricFamily(
            "jarvis_batch_answers",
            "Answers those passes carried, summed (per step: the mean batch occupancy).",
            value=answers,
        )
        yield CounterMetricFamily(
            "jarvis_batch_tokens",
            "Tokens those passes read (prompts, forced text, sampled tokens), summed.",
            value=tokens,
        )
        yield CounterMetricFamily(
            "jarvis_batch_forward_seconds",
            "Time spent inside those forward passes.",
            value=forward_seconds,
        )
