"""A real LLM as the teacher: how often its answers are valid, at what cost, in each mode.

``jarvis bench teacher`` starts llama-cpp-python's own OpenAI-compatible server on a GGUF the
packages ship (SmolLM2-135M, Gemma 3 270M), or uses any ``--base-url``, and makes the same
calls in each structured-output mode (``auto`` probes, ``json_object`` with the schema,
``none``: the schema in the prompt only). Two tasks:

* ``create_next_level`` (the RPG's rules judge the answers);
* a support-ticket triage whose answer type has an enum and a ranged field, declared twice:
  as JARVIS now declares a byLLM function (the schema made as strict as the program's own
  type, and the type itself as a check), and as byLLM's schema alone describes it (the enum in
  prose only: the baseline). For each, the answers JARVIS passed that the program's own type
  rejects: the program would crash on each of them.

Per mode: share of valid answers (calls whose final answer was valid), attempts per call,
prompt / answer tokens per call, p50 latency, and the decisions the teacher made.
"""

from __future__ import annotations

import enum
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from jarvis.core.results import CallResult
from jarvis.core.schema_tasks import SchemaTask
from jarvis.core.strict_schema import strict_schema
from jarvis.core.tasks import Task
from jarvis.models.base import EMBEDDED, shipped_gguf
from jarvis.rpg.tasks import create_next_level
from jarvis.runtime import Jarvis, Settings
from jarvis.runtime.teachers import PROTOCOL_EVENT

__all__ = ["MODES", "TICKETS", "llama_server", "run"]

MODES = ("auto", "json_object", "none")


class Category(enum.Enum):
    BILLING = "billing"
    TECHNICAL = "technical"
    ACCOUNT = "account"
    SHIPPING = "shipping"
    OTHER = "other"


@dataclass
class Triage:  # what a Jac `obj Triage { has category: Category, priority: int; }` is
    category: Category
    priority: int


# byLLM's schema for `def triage_ticket(ticket: str) -> Triage by llm();` (byllm 0.4.20)
BYLLM_TRIAGE: dict[str, Any] = {
    "title": "Triage",
    "type": "object",
    "properties": {
        "category": {
            "description": "\nThe value *should* be one in this list: ['billing', 'technical', "
            "'account', 'shipping', 'other'] where the names are [BILLING, TECHNICAL, ACCOUNT, "
            "SHIPPING, OTHER].",
            "type": "string",
        },
        "priority": {
            "type": "integer",
            "title": "Priority",
            "description": "How urgent the ticket is, from 1 (low) to 5 (critical).",
        },
    },
    "required": ["category", "priority"],
    "additionalProperties": False,
}

TICKETS = (
    "My invoice shows a double charge.",
    "The app crashes when I log in.",
    "Where is my parcel? It was due on Monday.",
    "I cannot change my password.",
    "Do you sell gift cards?",
    "The screen flickers after the update.",
    "I was billed after cancelling my plan.",
    "Please delete my account and my data.",
    "The courier left my box in the rain.",
    "Two-factor codes never arrive by SMS.",
)


def triage_tasks() -> tuple[SchemaTask, SchemaTask]:
    """(as JARVIS declares it now, as byLLM's schema alone describes it)."""
    doc = "Triage a support ticket: its category and how urgent it is."
    strict = SchemaTask(
        "bench.triage",
        ["ticket"],
        strict_schema(BYLLM_TRIAGE, Triage),
        doc,
        program_type=Triage,
    )
    prose = SchemaTask("bench.triage_byllm_schema", ["ticket"], BYLLM_TRIAGE, doc)
    return strict, prose


@dataclass
class ModeFigures:
    server: str
    mode: str
    task: str
    calls: int
    valid: int
    attempts: int
    tokens_in: int
    tokens_out: int
    latencies_ms: list[float]
    program_rejects: int | None  # answers JARVIS passed that the program's type rejects
    decisions: list[str]

    def as_dict(self) -> dict[str, Any]:
        n = max(self.calls, 1)
        return {
            "server": self.server,
            "mode": self.mode,
            "task": self.task,
            "calls": self.calls,
            "valid_share": round(self.valid / n, 4),
            "attempts_per_call": round(self.attempts / n, 2),
            "tokens_in_per_call": round(self.tokens_in / n, 1),
            "tokens_out_per_call": round(self.tokens_out / n, 1),
            "latency_p50_ms": round(statistics.median(self.latencies_ms), 1)
            if self.latencies_ms
            else None,
            "program_rejects_passed": self.program_rejects,
            "decisions": self.decisions,
        }


def _figures(server: str, mode: str, task: Task[Any], results: list[CallResult]) -> ModeFigures:
    return ModeFigures(
        server=server,
        mode=mode,
        task=task.name,
        calls=len(results),
        valid=sum(r.valid for r in results),
        attempts=sum(len(r.attempts) for r in results),
        tokens_in=sum(a.tokens_in or 0 for r in results for a in r.attempts),
        tokens_out=sum(a.tokens_out or 0 for r in results for a in r.attempts),
        latencies_ms=[r.latency_ms for r in results],
        program_rejects=None,
        decisions=[],
    )


def _program_rejects(results: list[CallResult]) -> int:
    """Valid answers (for JARVIS) that the program's own ``Triage`` refuses to parse."""
    program = TypeAdapter(Triage)
    rejected = 0
    for result in results:
        if not result.valid:
            continue
        try:
            program.validate_python(result.output_json)
        except ValidationError:
            rejected += 1
    return rejected


def run(
    url: str,
    model: str,
    *,
    server: str,
    modes: tuple[str, ...] = MODES,
    calls: int = 10,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Each mode in a fresh home: ``calls`` level calls and ``calls`` triage calls (both
    declarations)."""
    rows: list[dict[str, Any]] = []
    for mode in modes:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(
                home=Path(home),
                teacher_base_url=url,
                teacher_model=model,
                teacher_response_format=mode,
                student="none",
                max_tokens=160,
            )
            rt = Jarvis(settings)
            say(f"{server} · {mode}: {calls} level calls, {calls} triage calls × 2")
            levels = [
                rt.call(
                    create_next_level,
                    {"last_levels": [], "difficulty": 1 + i % 10},
                    raise_on_invalid=False,
                )
                for i in range(calls)
            ]
            figures = [_figures(server, mode, create_next_level, levels)]
            for task in triage_tasks():
                tickets = [TICKETS[i % len(TICKETS)] for i in range(calls)]
                results = [rt.call(task, {"ticket": t}, raise_on_invalid=False) for t in tickets]
                found = _figures(server, mode, task, results)
                found.program_rejects = _program_rejects(results)
                figures.append(found)
            decided = [
                str(e["message"])
                for e in reversed(rt.store.insights.events(limit=50))
                if e["kind"] == PROTOCOL_EVENT
            ]
            for f in figures:
                f.decisions = decided
                rows.append(f.as_dict())
            rt.close()
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llama_server(base: str, chat_format: str | None = None, threads: int = 2) -> Iterator[str]:
    """llama-cpp-python's own server on an embedded base's GGUF; yields its /v1 URL."""
    with tempfile.TemporaryDirectory() as scratch:
        gguf = shipped_gguf(EMBEDDED[base], Path(scratch))
        port = _free_port()
        args = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
        args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
        args += ["--n_threads", str(threads)]
        if chat_format:
            args += ["--chat_format", chat_format]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_for(url, proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                "llama-cpp-python's server exited: pip install 'llama-cpp-python[server]'"
            )
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"llama-cpp-python's server did not answer at {url}")
