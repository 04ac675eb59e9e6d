"""The documented keys of a call's envelope (``jarvis call --json``, ``/v1/tasks/{t}/call``)."""

ENVELOPE_KEYS = {
    "output",
    "source",
    "version",
    "attempts",
    "fallback",
    "escalated",
    "valid",
    "reason",
    "latency_ms",
    "call_id",
}
