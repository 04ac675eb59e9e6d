"""What the dashboard shows, as plain JSON-ready dicts built from the store.

The pages draw these and nothing else, so everything a user sees is computable (and tested)
without a browser: ``overview(rt)`` for the task table and charts, ``task_detail(rt, task)``
for one task's dataset, runs and versions, ``recent_calls(rt, task)`` for its call log. What
an answer looks like beyond its JSON is the task's own ``@task.display`` (the RPG draws its
maps as tile grids); the dashboard knows no domain.
"""

from __future__ import annotations

import time
from typing import Any

from jarvis.core.tasks import Task
from jarvis.runtime import Jarvis

__all__ = ["overview", "recent_calls", "task_detail", "task_row"]

ACTIVE = ("queued", "running")  # a run that is not over
RUN_FIELDS = ("id", "status", "reason", "created_at", "started_at", "finished_at", "version")


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def task_row(rt: Jarvis, stats: dict[str, Any]) -> dict[str, Any]:
    """One overview row: the store's counts plus shares, latencies and what was saved."""
    name = stats["name"]
    settings = rt.settings
    declared = rt.tasks.get(name)
    threshold = rt.task_settings(name).threshold  # what the worker acts on
    # calls the student was asked first: served, fell back, or escalated for doubt
    routed = stats["student_calls"] + stats["fallbacks"] + stats.get("escalations", 0)
    saved, tokens_in, tokens_out = rt.store.insights.student_tokens(name)
    cost = (tokens_in * settings.teacher_price_in + tokens_out * settings.teacher_price_out) / 1e6
    running = [r for r in rt.store.runs.recent(name, limit=3) if r["status"] in ACTIVE]
    return {
        **stats,
        "threshold": threshold,
        "kind": ("text" if declared.is_free_text else "typed") if declared else "unknown",
        "declared": declared is not None,
        "student_share": _share(stats["student_calls"], stats["calls"]),
        "fallback_rate": _share(stats["fallbacks"], routed),
        "valid_share": _share(stats["calls"] - stats["invalid_calls"], stats["calls"]),
        "threshold_progress": min(1.0, stats["examples_train"] / threshold) if threshold else 1.0,
        "latency_p50_ms": rt.store.insights.latency_p50(name),
        "teacher_calls_saved": saved,
        "cost_saved_usd": round(cost, 6),
        "run": _run(running[0]) if running else None,
        "escalation_rate": _share(stats.get("escalations", 0), routed),
        "live_agreement": _live_agreement(rt, name, stats["active_version"]),
        **_held_out(rt, name, stats["active_version"]),
        "feedback": _feedback(rt, name, stats["active_version"]),
    }


def _held_out(rt: Jarvis, task: str, version: str | None) -> dict[str, Any]:
    """The active version's gate figures: agreement with the teacher on held-out examples,
    its confidence threshold and the share of calls it keeps at that threshold."""
    found = rt.store.versions.get(task, version) if version else None
    card = (found or {}).get("card") or {}
    candidate = (card.get("gate") or {}).get("candidate") or {}
    calibration = candidate.get("calibration") or {}
    return {
        "held_out_agreement": candidate.get("agreement"),
        "confidence_threshold": card.get("confidence_threshold"),
        "coverage": calibration.get("coverage"),
    }


def _feedback(rt: Jarvis, task: str, version: str | None) -> dict[str, Any]:
    """Feedback on the active version's answers (and, overall, on the task's)."""
    per = rt.store.feedback.by_version(task)
    total = sum(v["feedback"] for v in per.values())
    negative = sum(v["negative"] for v in per.values())
    mine = per.get(version) if version else None
    return {"total": total, "negative": negative, "active": mine}


def _live_agreement(rt: Jarvis, task: str, version: str | None) -> float | None:
    """Mean agreement of the active version's recent shadow checks (None without any)."""
    if version is None:
        return None
    found = rt.store.shadows.agreements(task, version, rt.task_settings(task).shadow_window)
    return round(sum(found) / len(found), 4) if found else None


def _run(run: dict[str, Any]) -> dict[str, Any]:
    out = {k: run.get(k) for k in RUN_FIELDS}
    out["error"] = run.get("error")
    out["progress"] = run.get("progress") or {}
    return out


def overview(rt: Jarvis) -> dict[str, Any]:
    """Every task's row and its student-share series, and the totals across tasks."""
    rt.sync_tasks()
    rows = []
    for stats in rt.store.task_stats():
        row = task_row(rt, stats.as_dict())
        row["series"] = rt.store.insights.call_series(stats.name)
        rows.append(row)
    totals = {
        key: sum(r[key] for r in rows)
        for key in ("calls", "student_calls", "fallbacks", "teacher_calls_saved")
    }
    totals["cost_saved_usd"] = round(sum(r["cost_saved_usd"] for r in rows), 6)
    prices = {"in": rt.settings.teacher_price_in, "out": rt.settings.teacher_price_out}
    return {
        "now": time.time(),
        "teacher": rt.teachers.describe(),
        "base_model": rt.settings.base_model,
        "price_per_mtok": prices,
        "tasks": rows,
        "totals": totals,
        "events": rt.store.insights.events(limit=12),
    }


def task_detail(rt: Jarvis, task: Task[Any]) -> dict[str, Any]:
    """One task: its row, instructions, dataset growth, training runs and versions."""
    rt.sync_tasks()
    stats = next(s for s in rt.store.task_stats() if s.name == task.name)
    versions = []
    active = rt.store.versions.active(task.name)
    for v in reversed(rt.store.versions.of_task(task.name)):
        card = v.get("card") or {}
        train = card.get("train") or {}
        gate = card.get("gate") or {}
        versions.append(
            {
                "name": v["name"],
                "status": v["status"],
                "active": v["name"] == active,
                "created_at": v["created_at"],
                "promoted_at": v.get("promoted_at"),
                "parent": card.get("parent"),
                "train": {
                    k: train.get(k)
                    for k in ("examples", "steps", "first_loss", "final_loss", "duration_s")
                },
                "confidence_threshold": card.get("confidence_threshold"),
                "gate": {
                    "floor": gate.get("floor"),
                    "agreement_floor": gate.get("agreement_floor"),
                    "target_agreement": gate.get("target_agreement"),
                    "engine": gate.get("engine"),
                    "candidate": _gate_report(gate.get("candidate")),
                    "active": _gate_report(gate.get("active")),
                    "verdict": gate.get("verdict"),
                },
            }
        )
    return {
        "task": task_row(rt, stats.as_dict()),
        "instructions": task.instructions,
        "params": task.param_names,
        "output": getattr(task.output_type, "__name__", str(task.output_type)),
        "growth": rt.store.insights.example_growth(task.name),
        "series": rt.store.insights.call_series(task.name),
        "shadow": rt.store.shadows.summary(task.name),
        "runs": [_run(r) for r in rt.store.runs.recent(task.name, limit=10)],
        "versions": versions,
        "events": rt.store.insights.events(task.name, limit=20),
    }


def _gate_report(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if not report:
        return None
    keep = ("examples", "format_pass", "semantic_pass", "agreement", "compare")
    extra = ("field_agreement", "exact_match", "tokens_out_mean", "seconds", "text_similarity")
    out = {k: report.get(k) for k in (*keep, *extra, "text_metric")}
    calibration = report.get("calibration") or {}
    out["threshold"] = calibration.get("threshold")
    out["coverage"] = calibration.get("coverage")
    out["curve"] = calibration.get("curve") or []  # (threshold, coverage, agreement)
    out["failures"] = list(report.get("failures") or [])[:5]
    return out


def recent_calls(rt: Jarvis, task: Task[Any], limit: int = 25) -> list[dict[str, Any]]:
    """The latest calls of ``task``, newest first; a map answer comes with its tile grid."""
    out = []
    for call in rt.store.recent_calls(task.name, limit=limit):
        row = {
            k: call.get(k)
            for k in (
                "id",
                "created_at",
                "source",
                "version",
                "valid",
                "reason",
                "fallback",
                "escalated",
                "confidence",
                "attempts",
                "latency_ms",
                "error",
                "input",
                "output",
            )
        }
        row["tiles"] = None  # a tile grid, for tasks whose display draws one (the RPG's maps)
        row.update(task.shown(call.get("output")))
        out.append(row)
    return out
