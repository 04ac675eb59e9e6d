"""The store's tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Times are UNIX seconds (float); JSON values are stored as text written by the store itself,
so the hot path never pays for a JSON column type's round trips.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "typed" | "text"
    sa.Column("instructions", sa.Text, nullable=False, default=""),
    sa.Column("output_schema", sa.Text, nullable=True),
    sa.Column("params", sa.Text, nullable=False, default="[]"),
    sa.Column("threshold", sa.Integer, nullable=True),
    sa.Column("heldout_share", sa.Float, nullable=True),
    sa.Column("active_version", sa.String(64), nullable=True),
    # m003: "python" (declared in code the worker loads) or "schema" (a Jac function)
    sa.Column("origin", sa.String(16), nullable=False, server_default="python"),
    # m006: a newly released version serving a share of calls beside the active one
    sa.Column("canary_version", sa.String(64), nullable=True),
    sa.Column("canary_share", sa.Float, nullable=True),
    sa.Column("canary_since", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(128), sa.ForeignKey("tasks.name"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("input_json", sa.Text, nullable=False),
    sa.Column("output_json", sa.Text, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),  # "teacher" | "student"
    sa.Column("version", sa.String(64), nullable=True),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("fallback", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("tokens_in", sa.Integer, nullable=True),
    sa.Column("tokens_out", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # m006: a valid student answer below its version's confidence threshold, sent to the
    # teacher (not a fallback: nothing was wrong with it but the student's doubt)
    sa.Column("escalated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("confidence", sa.Float, nullable=True),  # m006: of the student's last answer
    sa.Index("ix_calls_task_id", "task", "id"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("version", sa.String(64), nullable=True),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("raw_text", sa.Text, nullable=True),
    sa.Column("output_json", sa.Text, nullable=True),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),  # "ok" | "format" | "semantic" | "error"
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("temperature", sa.Float, nullable=True),
    sa.Column("top_p", sa.Float, nullable=True),
    sa.Column("seed", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("tokens_in", sa.Integer, nullable=True),
    sa.Column("tokens_out", sa.Integer, nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),  # m006: a student answer's confidence
)

examples = sa.Table(
    "examples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(128), sa.ForeignKey("tasks.name"), nullable=False),
    sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=True),
    sa.Column("origin", sa.String(32), nullable=False),  # "teacher" | "import"
    sa.Column("input_json", sa.Text, nullable=False),
    sa.Column("output_json", sa.Text, nullable=False),
    sa.Column("input_hash", sa.String(64), nullable=False),
    sa.Column("output_hash", sa.String(64), nullable=False),
    sa.Column("split", sa.String(8), nullable=False),  # "train" | "heldout"
    # m005: how many teacher calls gave this very example (1 + the duplicates not stored)
    sa.Column("seen", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("task", "input_hash", "output_hash", name="uq_examples_content"),
    sa.Index("ix_examples_task_split", "task", "split", "id"),
)

training_runs = sa.Table(
    "training_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(128), sa.ForeignKey("tasks.name"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queued|running|succeeded|failed
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("params_json", sa.Text, nullable=False, default="{}"),
    sa.Column("progress_json", sa.Text, nullable=False, default="{}"),
    sa.Column("version", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),  # m002
    sa.Column("reason", sa.Text, nullable=True),  # m002: why it was started
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(128), sa.ForeignKey("tasks.name"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # candidate|active|retired|rejected
    sa.Column("card_json", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("promoted_at", sa.Float, nullable=True),  # m002
    sa.UniqueConstraint("task", "name", name="uq_versions_task_name"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(128), nullable=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data_json", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_events_task_id", "task", "id"),
)

shadows = sa.Table(  # m004: a student answer checked against the teacher in the background
    "shadows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(128), nullable=False),
    sa.Column("call_id", sa.Integer, nullable=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("agreement", sa.Float, nullable=True),  # None: the teacher gave no valid answer
    sa.Column("metric", sa.String(32), nullable=False),  # "fields" | "chrF"
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_shadows_task_version_id", "task", "version", "id"),
)

feedback = sa.Table(  # m006: what the program or a person said of a served answer
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=False, index=True),
    sa.Column("task", sa.String(128), nullable=False),
    sa.Column("version", sa.String(64), nullable=True),  # the version that answered, if any
    sa.Column("score", sa.Float, nullable=True),  # 0 (wrong) .. 1 (right)
    sa.Column("correction_json", sa.Text, nullable=True),  # a validated better answer
    sa.Column("source", sa.String(64), nullable=False),  # who said it: "api", "cli", a name
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_feedback_task_version", "task", "version"),
)
