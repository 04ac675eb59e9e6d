"""Run ``.jac`` programs for the dashboard: one ``jac run`` subprocess per run, watched.

Each run gets a working directory of its own (``<home>/jac/runs/<id>/``) with the program
copied into it, the server's environment plus ``JARVIS_HOME`` (so the program's ``by llm()``
calls land in this JARVIS's store through the Jac plugin), stdout and stderr merged, a
wall-clock limit and its own process group (so a timeout or a stop also ends whatever the
program started). Output is kept twice: the last ``OUTPUT_BYTES`` in memory for live
consoles, all of it in ``output.log``. At most ``jac_max_runs`` run at once.

Nothing here takes a path from the client: programs are chosen by an id from
:meth:`JacRunner.programs`, uploads are stored under a sanitised name, run ids are hex.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from jarvis.runtime.settings import Settings
from jarvis.server.errors import ApiError

__all__ = ["OUTPUT_BYTES", "JacRun", "JacRunner", "check_run_id", "find_jac", "upload_name"]

OUTPUT_BYTES = 1 << 20  # kept in memory per run; output.log has everything
LINE_BYTES = 64 * 1024  # a longer line arrives in pieces
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL this much later
KEEP_RUNS = 50  # finished runs listed (newest first)
INSTALL_HINT = "jaclang is not installed on the server: pip install 'jarvis-mtllm[jac]'"

Status = Literal["running", "succeeded", "failed", "stopped", "timeout"]
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")
_SIBLINGS = {".jac", ".py"}  # an example may import its neighbours


def find_jac() -> str | None:
    """The ``jac`` script of this interpreter's environment, else the one on PATH."""
    here = Path(sys.executable).parent / ("jac.exe" if os.name == "nt" else "jac")
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("jac")


def check_run_id(run_id: str) -> str:
    """Run ids are 32 hex digits: nothing else can name a directory."""
    if not _RUN_ID.fullmatch(run_id):
        raise ApiError(404, f"no such run: {run_id[:40]!r}", param="run_id", code="unknown_run")
    return run_id


def upload_name(name: str) -> str:
    """A safe file name for an upload, or 400: no directories, ``[A-Za-z0-9_.-]``, ``.jac``."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "the program needs a file name", param="name", code="bad_name")
    name = name.strip()
    if "/" in name or "\\" in name or "\x00" in name:
        raise ApiError(
            400, "the file name may not contain path separators", param="name", code="bad_name"
        )
    clean = _NAME_OK.sub("_", name)
    if clean.startswith(".") or ".." in clean:
        raise ApiError(
            400,
            "the file name may not start with '.' or contain '..'",
            param="name",
            code="bad_name",
        )
    if not clean.lower().endswith(".jac") or len(clean) <= 4:
        raise ApiError(400, "only .jac programs can be uploaded", param="name", code="bad_name")
    if len(clean) > 100:
        raise ApiError(
            400, "the file name is longer than 100 characters", param="name", code="bad_name"
        )
    return clean


@dataclass
class JacRun:
    """One ``jac run``: its process, its output (bounded, numbered lines) and its outcome."""

    id: str
    program: str  # the program id it ran
    name: str  # the file name inside ``dir``
    dir: Path
    started_at: float
    status: Status = "running"
    returncode: int | None = None
    reason: str | None = None  # why it ended when it did not end by itself
    ended_at: float | None = None
    error: str | None = None
    lines: deque[tuple[int, str]] = field(default_factory=deque)
    next_seq: int = 0  # sequence number of the next line
    kept_bytes: int = 0
    process: subprocess.Popen[bytes] | None = None
    stop_requested: str | None = None  # "stopped" / "timeout" once a kill was asked for
    lock: threading.Lock = field(default_factory=threading.Lock)
    ended: threading.Event = field(default_factory=threading.Event)  # set once recorded

    @property
    def log_path(self) -> Path:
        return self.dir / "output.log"

    @property
    def done(self) -> bool:
        return self.status != "running"

    def add_line(self, text: str) -> None:
        """Keep ``text`` as the next line; drop the oldest beyond ``OUTPUT_BYTES``."""
        text = text.rsplit("\r", 1)[-1]  # a progress bar: what a terminal would show last
        with self.lock:
            self.lines.append((self.next_seq, text))
            self.next_seq += 1
            self.kept_bytes += len(text) + 1
            while self.kept_bytes > OUTPUT_BYTES and len(self.lines) > 1:
                _, old = self.lines.popleft()
                self.kept_bytes -= len(old) + 1

    def lines_from(self, seq: int) -> tuple[list[tuple[int, str]], int, bool]:
        """Lines numbered ``seq`` or later, how many before them were dropped, and ``done``."""
        with self.lock:
            first = self.lines[0][0] if self.lines else self.next_seq
            dropped = max(0, first - seq)
            out = [item for item in self.lines if item[0] >= seq]
            return out, dropped, self.done

    def exit_info(self) -> dict[str, Any]:
        """What the console shows when the run has ended."""
        if self.status == "timeout":
            message = "killed: timeout"
        elif self.status == "stopped":
            message = "stopped"
        elif self.error:
            message = f"could not start: {self.error}"
        else:
            message = f"exit code {self.returncode}"
        return {
            "status": self.status,
            "returncode": self.returncode,
            "reason": self.reason,
            "message": message,
        }

    def summary(self) -> dict[str, Any]:
        ended = self.ended_at
        return {
            "id": self.id,
            "program": self.program,
            "name": self.name,
            "status": self.status,
            "returncode": self.returncode,
            "reason": self.reason,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": ended,
            "duration_s": round((ended or time.time()) - self.started_at, 3),
            "lines": self.next_seq,
            "dir": str(self.dir),
        }


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class JacRunner:
    """The programs a dashboard may run and the runs it started (this process's and earlier)."""

    def __init__(self, settings: Settings, *, jac: Callable[[], str | None] | None = None) -> None:
        self.settings = settings
        self.root = settings.home / "jac"
        self.programs_dir = self.root / "programs"
        self.runs_dir = self.root / "runs"
        self._find_jac = jac  # None: look for it on each run (it may be installed later)
        self._lock = threading.Lock()
        self._runs: dict[str, JacRun] = {}
        self._load_past_runs()

    def jac(self) -> str | None:
        """The ``jac`` executable to run, or None when jaclang is not installed."""
        return (self._find_jac or find_jac)()

    # -- programs ----------------------------------------------------------------------------
    @property
    def examples_dir(self) -> Path:
        if self.settings.jac_examples_dir is not None:
            return self.settings.jac_examples_dir
        return Path(__file__).resolve().parents[3] / "examples"  # src/jarvis/server → repo

    def _program_paths(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        examples = self.examples_dir
        if examples.is_dir():
            for path in sorted(examples.rglob("*.jac")):
                rel = path.relative_to(examples).as_posix()
                if path.is_file() and not any(p.startswith(".") for p in rel.split("/")):
                    found[f"example:{rel}"] = path
        if self.programs_dir.is_dir():
            for path in sorted(self.programs_dir.glob("*.jac")):
                if path.is_file():
                    found[f"upload:{path.name}"] = path
        return found

    def programs(self) -> list[dict[str, Any]]:
        """Example programs shipped with the repository, then the ones uploaded here."""
        out = []
        for pid, path in self._program_paths().items():
            kind, _, label = pid.partition(":")
            stat = path.stat()
            out.append(
                {
                    "id": pid,
                    "kind": kind,
                    "name": label,
                    "bytes": stat.st_size,
                    "modified_at": stat.st_mtime,
                }
            )
        return out

    def program_source(self, program: str) -> str:
        return self._program_path(program).read_text("utf-8", errors="replace")

    def _program_path(self, program: str) -> Path:
        """The file of a program id from :meth:`programs` (404 for any other id)."""
        path = self._program_paths().get(program)
        if path is None:
            raise ApiError(
                404, f"no such program: {program[:120]!r}", param="program", code="unknown_program"
            )
        return path

    def upload(self, name: str, source: str) -> dict[str, Any]:
        """Store an uploaded program under its sanitised name (replacing one of that name)."""
        clean = upload_name(name)
        data = source.encode("utf-8")
        limit = self.settings.jac_max_upload_bytes
        if len(data) > limit:
            raise ApiError(
                413,
                f"the program is {len(data)} bytes; at most {limit} bytes may be uploaded "
                "(JARVIS_JAC_MAX_UPLOAD_BYTES)",
                param="source",
                code="program_too_large",
            )
        self.programs_dir.mkdir(parents=True, exist_ok=True)
        target = self.programs_dir / clean
        tmp = target.with_name(f".{clean}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return {"id": f"upload:{clean}", "kind": "upload", "name": clean, "bytes": len(data)}

    # -- runs --------------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: r.started_at, reverse=True)
        return [r.summary() for r in runs]

    def get(self, run_id: str) -> JacRun:
        check_run_id(run_id)
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise ApiError(404, f"no such run: {run_id}", param="run_id", code="unknown_run")
        return run

    def start(self, program: str) -> JacRun:
        """Start ``jac run`` on ``program`` (an id from :meth:`programs`)."""
        source = self._program_path(program)
        jac = self.jac()
        if jac is None:
            raise ApiError(501, INSTALL_HINT, code="jac_not_installed")
        limit = self.settings.jac_max_runs
        with self._lock:
            running = sum(1 for r in self._runs.values() if not r.done)
            if running >= limit:
                raise ApiError(
                    429,
                    f"{running} .jac program(s) already running (at most {limit} at once, "
                    "JARVIS_JAC_MAX_RUNS): stop one or wait",
                    code="too_many_runs",
                )
            run_id = uuid.uuid4().hex
            run_dir = self.runs_dir / run_id
            run = JacRun(run_id, program, source.name, run_dir, time.time())
            self._runs[run_id] = run  # holds the slot while it starts
        try:
            self._launch(run, source, jac)
        except OSError as exc:
            with run.lock:
                run.status, run.error, run.ended_at = "failed", str(exc), time.time()
            self._save(run)
            run.ended.set()
        self._trim()
        return run

    def _launch(self, run: JacRun, source: Path, jac: str) -> None:
        """Copy the program into the run's directory and start ``jac run`` there."""
        run.dir.mkdir(parents=True)
        if source.parent == self.programs_dir:
            shutil.copy2(source, run.dir / source.name)
        else:  # an example: bring the modules next to it too
            for sibling in source.parent.iterdir():
                if sibling.is_file() and sibling.suffix in _SIBLINGS:
                    shutil.copy2(sibling, run.dir / sibling.name)
        env = dict(os.environ)
        env["JARVIS_HOME"] = str(self.settings.home)
        env["PYTHONUNBUFFERED"] = "1"  # lines arrive as they are printed
        log = run.log_path.open("wb")
        try:
            process = subprocess.Popen(
                [jac, "run", run.name],
                cwd=run.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill ends all of it
            )
        except OSError:
            log.close()
            raise
        run.process = process
        self._save(run)
        eof = threading.Event()
        threading.Thread(
            target=self._read,
            args=(run, process, log, eof),
            name=f"jac-read-{run.id[:8]}",
            daemon=True,
        ).start()
        threading.Thread(
            target=self._watch,
            args=(run, process, eof, self.settings.jac_run_timeout_s),
            name=f"jac-watch-{run.id[:8]}",
            daemon=True,
        ).start()

    def _read(
        self, run: JacRun, process: subprocess.Popen[bytes], log: BinaryIO, eof: threading.Event
    ) -> None:
        """Copy the merged output, line by line, to output.log and to the run's memory."""
        stdout = process.stdout
        assert stdout is not None
        try:
            with log:
                while raw := stdout.readline(LINE_BYTES):
                    log.write(raw)
                    log.flush()
                    run.add_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        finally:
            stdout.close()
            eof.set()

    def _watch(
        self, run: JacRun, process: subprocess.Popen[bytes], eof: threading.Event, limit: float
    ) -> None:
        """Enforce the time limit, then record how the run ended (once its output is in)."""
        try:
            process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self._terminate(
                run,
                "timeout",
                f"time limit of {limit:g} s reached (JARVIS_JAC_RUN_TIMEOUT_S)",
            )
            process.wait()
        if not eof.wait(2.0):  # something it started still holds the pipe
            _kill_group(process.pid, signal.SIGKILL)
            eof.wait(2.0)
        with run.lock:
            run.returncode = process.returncode
            run.ended_at = time.time()
            if run.stop_requested == "timeout":
                run.status = "timeout"
            elif run.stop_requested == "stopped":
                run.status = "stopped"
            else:
                run.status = "succeeded" if process.returncode == 0 else "failed"
        self._save(run)
        run.ended.set()

    def _terminate(self, run: JacRun, why: Literal["stopped", "timeout"], reason: str) -> bool:
        """SIGTERM the run's process group, SIGKILL it ``STOP_GRACE_S`` later if still alive."""
        process = run.process
        with run.lock:
            if run.done or process is None or run.stop_requested:
                return False
            run.stop_requested, run.reason = why, reason
        _kill_group(process.pid, signal.SIGTERM)

        def finish() -> None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE_S)
            _kill_group(process.pid, signal.SIGKILL)  # also whatever it left behind

        threading.Thread(target=finish, name=f"jac-kill-{run.id[:8]}", daemon=True).start()
        return True

    def stop(self, run_id: str) -> JacRun:
        run = self.get(run_id)
        if run.done:
            raise ApiError(409, f"run {run_id} has already ended ({run.status})", code="run_ended")
        self._terminate(run, "stopped", "stopped from the dashboard")
        return run

    def shutdown(self, wait_s: float = STOP_GRACE_S + 3.0) -> None:
        """Stop every run still going (the server is going away) and wait for their records."""
        with self._lock:
            running = [r for r in self._runs.values() if not r.done]
        for run in running:
            self._terminate(run, "stopped", "the server shut down")
        deadline = time.monotonic() + wait_s
        for run in running:
            run.ended.wait(max(0.0, deadline - time.monotonic()))

    # -- records -----------------------------------------------------------------------------
    def _save(self, run: JacRun) -> None:
        if not run.dir.is_dir():
            return
        data = run.summary()
        tmp = run.dir / "run.json.tmp"
        tmp.write_text(json.dumps(data, indent=2), "utf-8")
        tmp.replace(run.dir / "run.json")

    def _load_past_runs(self) -> None:
        """Runs of earlier server processes: listed, their output read from output.log."""
        if not self.runs_dir.is_dir():
            return
        for path in self.runs_dir.glob("*/run.json"):
            if not _RUN_ID.fullmatch(path.parent.name):
                continue
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            status = data.get("status")
            run = JacRun(
                path.parent.name,
                str(data.get("program", "?")),
                str(data.get("name", "?")),
                path.parent,
                float(data.get("started_at") or path.stat().st_mtime),
                status=status
                if status in ("succeeded", "failed", "stopped", "timeout")
                else "stopped",
                returncode=data.get("returncode"),
                reason=data.get("reason")
                if status != "running"
                else "the server stopped while it ran",
                ended_at=data.get("ended_at") or path.stat().st_mtime,
                error=data.get("error"),
                next_seq=int(data.get("lines") or 0),
            )
            self._runs[run.id] = run
        self._trim()

    def _trim(self) -> None:
        """Forget (in memory; the directories stay) all but the newest finished runs."""
        with self._lock:
            done = sorted(
                (r for r in self._runs.values() if r.done), key=lambda r: r.started_at, reverse=True
            )
            for run in done[KEEP_RUNS:]:
                del self._runs[run.id]

    def past_output(self, run: JacRun) -> list[str]:
        """A finished run's last ``OUTPUT_BYTES`` of output, from its output.log."""
        try:
            with run.log_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - OUTPUT_BYTES))
                data = f.read()
        except OSError:
            return []
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if size > OUTPUT_BYTES and lines:
            lines[0] = f"… (earlier output in {run.log_path})"
        return [line.rstrip("\r") for line in lines]
