"""``jarvis serve`` and ``jarvis up`` start a real server that answers until stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "up"])
def test_the_server_starts_answers_and_stops(home: Path, command: str) -> None:
    port = _free_port()
    env = {**os.environ, "JARVIS_HOME": str(home), "JARVIS_STUDENT": "none"}
    jarvis = [sys.executable, "-m", "jarvis.cli", command, "--port", str(port)]
    process = subprocess.Popen(jarvis, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0].decode()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        call = httpx.post(
            f"http://127.0.0.1:{port}/v1/tasks/create_next_level/call",
            json={"input": {"last_levels": [], "difficulty": 1}},
            timeout=30,
        )
        assert call.json()["valid"]
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert f"http://127.0.0.1:{port}" in output
