"""Running .jac programs from the dashboard: real ``jac run`` subprocesses on a live server.

The API is driven with httpx (the console stream is read as real server-sent events), the
page with Chromium. The programs are tiny so each run takes about a second.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from helpers.live_server import LiveServer
from jarvis import Jarvis, Settings
from jarvis.server.jac_routes import console_event
from jarvis.server.jac_runs import OUTPUT_BYTES, JacRun, JacRunner, find_jac

pytestmark = pytest.mark.skipif(find_jac() is None, reason="jaclang is not installed")

TOKEN = "s3cret"
HELLO = """with entry {
    for i in range(3) { print(f"line {i}"); }
}
"""
SLOW = """import time;
with entry {
    print("start");
    time.sleep(60);
}
"""
WHERE = """import os;
with entry {
    print("cwd=" + os.getcwd());
    print("home=" + os.environ["JARVIS_HOME"]);
}
"""
PROGRESS = """with entry {
    print("10%\\r50%\\rdone");
    print("after");
}
"""
BAD = """with entry {
    raise ValueError("boom");
}
"""


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "examples"
    (folder / "demo").mkdir(parents=True)
    (folder / "hello.jac").write_text(HELLO)
    (folder / "slow.jac").write_text(SLOW)
    (folder / "demo" / "where.jac").write_text(WHERE)
    (folder / "bad.jac").write_text(BAD)
    (folder / "progress.jac").write_text(PROGRESS)
    return folder


@pytest.fixture
def jac_site(site: LiveServer, examples: Path) -> LiveServer:
    """The live server with an admin token and the test programs as its examples."""
    site.rt.settings.jac_examples_dir = examples
    site.server.config.app.state.api_token = TOKEN
    return site


@pytest.fixture
def client(jac_site: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=jac_site.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as c:
        yield c


def events(client: httpx.Client, run_id: str) -> list[tuple[str, str]]:
    """The run's console stream, parsed as server-sent events, until it ends."""
    out: list[tuple[str, str]] = []
    with client.stream("GET", f"/v1/admin/jac/runs/{run_id}/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    text = re.sub(r"\r\n|\r", "\n", text)  # SSE ends a line at any of the three
    for block in text.split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        event, data = "message", []
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key == "event":
                event = value
            elif key == "data":
                data.append(value)
        out.append((event, "\n".join(data)))
    return out


def start(client: httpx.Client, program: str) -> dict[str, Any]:
    response = client.post("/v1/admin/jac/runs", json={"program": program})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def wait_for(client: httpx.Client, run_id: str, test: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.get(f"/v1/admin/jac/runs/{run_id}").json()
        if test(run):
            return run
        assert time.monotonic() < deadline, f"run never got there: {run}"
        time.sleep(0.1)


ROUTES = [
    ("GET", "/v1/admin/jac/programs", None),
    ("POST", "/v1/admin/jac/programs", {"name": "x.jac", "source": HELLO}),
    ("GET", "/v1/admin/jac/programs/example:hello.jac", None),
    ("GET", "/v1/admin/jac/runs", None),
    ("POST", "/v1/admin/jac/runs", {"program": "example:hello.jac"}),
    ("GET", f"/v1/admin/jac/runs/{'a' * 32}", None),
    ("GET", f"/v1/admin/jac/runs/{'a' * 32}/stream", None),
    ("POST", f"/v1/admin/jac/runs/{'a' * 32}/stop", None),
]


def test_every_jac_route_needs_a_configured_token_and_the_right_bearer(
    site: LiveServer, examples: Path
) -> None:
    site.rt.settings.jac_examples_dir = examples
    app = site.server.config.app
    assert app.state.api_token is None and not app.state.exposed  # loopback, no token
    jac_home = site.rt.settings.home / "jac"
    with httpx.Client(base_url=site.url, timeout=10) as c:
        for method, path, body in ROUTES:
            response = c.request(method, path, json=body)
            assert response.status_code == 403, (path, response.text)
            error = response.json()["error"]
            assert "running .jac programs needs JARVIS_API_TOKEN" in error["message"]
            assert error["code"] == "jac_needs_token"
        app.state.api_token = TOKEN
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for method, path, body in ROUTES:
                response = c.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (path, headers, response.text)
                assert response.json()["error"]["code"] == "invalid_token"
    assert not jac_home.exists()  # nothing uploaded, nothing run


def test_uploads_are_sanitised_and_bounded(client: httpx.Client, jac_site: LiveServer) -> None:
    for name in ("../evil.jac", "a/b.jac", "a\\b.jac", "x.py", ".jac", "..jac", ".hidden.jac"):
        response = client.post("/v1/admin/jac/programs", json={"name": name, "source": HELLO})
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"]["param"] == "name"
    limit = jac_site.rt.settings.jac_max_upload_bytes
    response = client.post(
        "/v1/admin/jac/programs", json={"name": "big.jac", "source": "#" * (limit + 1)}
    )
    assert response.status_code == 413
    assert f"at most {limit} bytes" in response.json()["error"]["message"]

    response = client.post("/v1/admin/jac/programs", json={"name": "my prog.jac", "source": HELLO})
    assert response.status_code == 201
    assert response.json()["id"] == "upload:my_prog.jac"
    programs_dir = jac_site.rt.settings.home / "jac" / "programs"
    assert sorted(p.name for p in programs_dir.iterdir()) == ["my_prog.jac"]
    listed = client.get("/v1/admin/jac/programs").json()
    ids = [p["id"] for p in listed["programs"]]
    assert ids == [
        "example:bad.jac",
        "example:demo/where.jac",
        "example:hello.jac",
        "example:progress.jac",
        "example:slow.jac",
        "upload:my_prog.jac",
    ]
    assert listed["jac_installed"] is True
    source = client.get("/v1/admin/jac/programs/upload:my_prog.jac").json()["source"]
    assert source == HELLO
    assert client.get("/v1/admin/jac/programs/upload:../../jarvis.db").status_code == 404


def test_a_run_streams_its_lines_and_keeps_them_in_its_own_directory(
    client: httpx.Client, jac_site: LiveServer
) -> None:
    run = start(client, "example:hello.jac")
    assert run["status"] == "running"
    got = events(client, run["id"])
    assert got[0][0] == "run"
    assert [data for event, data in got if event == "message"] == ["line 0", "line 1", "line 2"]
    assert got[-1][0] == "exit"
    assert json.loads(got[-1][1]) == {
        "status": "succeeded",
        "returncode": 0,
        "reason": None,
        "message": "exit code 0",
    }
    run_dir = jac_site.rt.settings.home / "jac" / "runs" / run["id"]
    assert (run_dir / "output.log").read_text() == "line 0\nline 1\nline 2\n"
    assert (run_dir / "hello.jac").read_text() == HELLO
    finished = client.get(f"/v1/admin/jac/runs/{run['id']}").json()
    assert finished["status"] == "succeeded" and finished["lines"] == 3
    assert [r["id"] for r in client.get("/v1/admin/jac/runs").json()["runs"]] == [run["id"]]
    # a stream opened after the end replays the same output
    replay = events(client, run["id"])
    assert replay[1:] == got[1:]


def test_a_run_works_in_its_directory_with_this_jarvis_home(
    client: httpx.Client, jac_site: LiveServer
) -> None:
    run = start(client, "example:demo/where.jac")
    lines = [data for event, data in events(client, run["id"]) if event == "message"]
    run_dir = jac_site.rt.settings.home / "jac" / "runs" / run["id"]
    assert lines == [f"cwd={run_dir}", f"home={jac_site.rt.settings.home}"]


def test_a_failing_program_ends_failed_with_its_exit_code(client: httpx.Client) -> None:
    run = start(client, "example:bad.jac")
    got = events(client, run["id"])
    assert any("boom" in data for event, data in got if event == "message")
    exit_info = json.loads(got[-1][1])
    assert exit_info["status"] == "failed" and exit_info["returncode"] != 0


def test_stop_kills_a_long_running_program_and_runs_are_bounded(
    client: httpx.Client, jac_site: LiveServer
) -> None:
    jac_site.rt.settings.jac_max_runs = 1
    run = start(client, "example:slow.jac")
    wait_for(client, run["id"], lambda r: r["lines"] >= 1)
    busy = client.post("/v1/admin/jac/runs", json={"program": "example:hello.jac"})
    assert busy.status_code == 429
    assert "at most 1 at once" in busy.json()["error"]["message"]

    began = time.monotonic()
    assert client.post(f"/v1/admin/jac/runs/{run['id']}/stop").status_code == 200
    got = events(client, run["id"])
    assert time.monotonic() - began < 10
    assert ("message", "start") in got
    exit_info = json.loads(got[-1][1])
    assert exit_info["status"] == "stopped" and exit_info["message"] == "stopped"
    assert client.post(f"/v1/admin/jac/runs/{run['id']}/stop").status_code == 409
    assert start(client, "example:hello.jac")["status"] == "running"  # the slot is free


def test_the_time_limit_kills_a_program(client: httpx.Client, jac_site: LiveServer) -> None:
    # long enough for `jac run` to start on a busy 2-core machine (~3 s), far below the 60 s sleep
    jac_site.rt.settings.jac_run_timeout_s = 8.0
    run = start(client, "example:slow.jac")
    got = events(client, run["id"])
    assert ("message", "start") in got
    exit_info = json.loads(got[-1][1])
    assert exit_info["status"] == "timeout"
    assert exit_info["message"] == "killed: timeout"
    assert "time limit of 8 s reached" in exit_info["reason"]


def test_a_progress_line_shows_what_a_terminal_would_and_the_lines_after_it(
    client: httpx.Client,
) -> None:
    run = start(client, "example:progress.jac")
    lines = [data for event, data in events(client, run["id"]) if event == "message"]
    assert lines == ["done", "after"]


def test_a_carriage_return_inside_an_event_is_framed_not_cut() -> None:
    # SSE ends a line at \r too: a raw "data: 10%\r50%" would lose "50%" in a browser
    frame = console_event("10%\r50%\rdone", "message").encode().decode()
    assert frame == "event: message\r\ndata: 10%\r\ndata: 50%\r\ndata: done\r\n\r\n"


def test_run_ids_and_programs_are_checked(client: httpx.Client) -> None:
    for bad in ("..", "..%2F..%2Fjarvis.db", "12345", "A" * 32, "g" * 32):
        assert client.get(f"/v1/admin/jac/runs/{bad}").status_code == 404, bad
        assert client.get(f"/v1/admin/jac/runs/{bad}/stream").status_code == 404, bad
    response = client.post("/v1/admin/jac/runs", json={"program": "example:../../etc/passwd"})
    assert response.status_code == 404
    assert client.post("/v1/admin/jac/runs", json={"program": "/bin/sh"}).status_code == 404


def test_without_jaclang_the_answer_says_what_to_install(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jarvis.server.jac_runs.find_jac", lambda: None)
    response = client.post("/v1/admin/jac/runs", json={"program": "example:hello.jac"})
    assert response.status_code == 501
    assert "jarvis-mtllm[jac]" in response.json()["error"]["message"]
    assert client.get("/v1/admin/jac/programs").json()["jac_installed"] is False


def test_runs_of_an_earlier_server_are_listed_with_their_output(
    client: httpx.Client, jac_site: LiveServer
) -> None:
    run = start(client, "example:hello.jac")
    events(client, run["id"])
    again = JacRunner(jac_site.rt.settings)
    (past,) = again.runs()
    assert past["id"] == run["id"] and past["status"] == "succeeded"
    assert again.past_output(again.get(run["id"])) == ["line 0", "line 1", "line 2"]


def test_stopping_the_server_stops_its_runs(web_settings: Settings, examples: Path) -> None:
    web_settings.jac_examples_dir = examples
    rt = Jarvis(web_settings)
    with LiveServer(rt) as server:
        app = server.server.config.app
        app.state.api_token = TOKEN
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as c:
            run = start(c, "example:slow.jac")
            wait_for(c, run["id"], lambda r: r["lines"] >= 1)
        process = app.state.jac_runner.get(run["id"]).process
    assert process.wait(timeout=10) != 0  # ended by the server's shutdown, not by itself
    record = json.loads((web_settings.home / "jac" / "runs" / run["id"] / "run.json").read_text())
    assert record["status"] == "stopped" and record["reason"] == "the server shut down"
    rt.close()


def test_a_runs_memory_keeps_only_its_last_output(tmp_path: Path) -> None:
    run = JacRun("a" * 32, "example:x.jac", "x.jac", tmp_path, time.time())
    line = "x" * 1023
    for _ in range(2 * OUTPUT_BYTES // 1024):
        run.add_line(line)
    run.add_line("10%\r50%\rdone")
    assert run.kept_bytes <= OUTPUT_BYTES
    lines, dropped, done = run.lines_from(0)
    assert dropped == run.next_seq - len(lines) > 0 and not done
    assert lines[-1] == (run.next_seq - 1, "done")


def test_the_default_examples_are_the_repositorys(jac_site: LiveServer) -> None:
    settings = jac_site.rt.settings.model_copy(update={"jac_examples_dir": None})
    ids = [p["id"] for p in JacRunner(settings).programs()]
    assert "example:rpg/rpg.jac" in ids


# -- the page ---------------------------------------------------------------------------------


def test_the_page_runs_a_program_and_shows_its_output_live(
    jac_site: LiveServer, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{jac_site.url}/jac")
    expect(page.locator("#jac-programs")).to_contain_text("Enter the admin token")
    page.locator("#jac-token").fill(TOKEN)
    page.locator("#jac-connect").click()
    expect(page.locator('[data-program="example:hello.jac"]')).to_be_visible()
    page.locator('[data-program="example:hello.jac"]').click()
    page.locator("#jac-run").click()
    console = page.locator("#jac-console")
    expect(console).to_contain_text("line 2")
    expect(console).to_have_text("line 0\nline 1\nline 2\n")
    expect(page.locator("#jac-exit")).to_be_visible()
    expect(page.locator("#jac-exit")).to_have_text("exit code 0")
    expect(page.locator("#jac-status")).to_have_text("succeeded")
    expect(page.locator("#jac-runs tbody tr")).to_have_count(1)
    expect(page.locator("#jac-runs tbody")).to_contain_text("hello.jac")

    # an uploaded program: read by the browser, sent as JSON, then run
    program = tmp_path / "count down.jac"
    program.write_text('with entry {\n    for i in [3, 2, 1] { print(f"T-{i}"); }\n}\n')
    page.locator("#jac-file").set_input_files(str(program))
    expect(page.locator("#jac-upload-note")).to_have_text("uploaded as count_down.jac")
    expect(page.locator('[data-program="upload:count_down.jac"]')).to_have_class(
        "jac-program selected"
    )
    page.locator("#jac-run").click()
    expect(console).to_have_text("T-3\nT-2\nT-1\n")
    expect(page.locator("#jac-exit")).to_be_visible()
    expect(page.locator("#jac-exit")).to_have_text("exit code 0")
    expect(page.locator("#jac-status")).to_have_text("succeeded")
    expect(page.locator("#jac-runs tbody tr")).to_have_count(2)
    assert page.evaluate("localStorage.getItem(J.TOKEN_KEY)") == TOKEN


def test_the_page_shows_the_text_after_a_carriage_return(jac_site: LiveServer, page: Any) -> None:
    page.goto(f"{jac_site.url}/jac")
    page.locator("#jac-token").fill(TOKEN)
    page.locator("#jac-connect").click()
    page.locator('[data-program="example:progress.jac"]').click()
    page.locator("#jac-run").click()
    expect(page.locator("#jac-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#jac-console")).to_have_text("done\nafter\n")


def test_the_page_stops_a_running_program(jac_site: LiveServer, page: Any) -> None:
    page.goto(f"{jac_site.url}/jac")
    page.evaluate(f"localStorage.setItem(J.TOKEN_KEY, '{TOKEN}')")
    page.reload()
    expect(page.locator("#jac-token")).to_have_value(TOKEN)
    page.locator('[data-program="example:slow.jac"]').click()
    page.locator("#jac-run").click()
    expect(page.locator("#jac-console")).to_contain_text("start")
    expect(page.locator("#jac-status")).to_have_text("running")
    page.locator("#jac-stop").click()
    expect(page.locator("#jac-exit")).to_contain_text("stopped")
    expect(page.locator("#jac-status")).to_have_text("stopped")
    expect(page.locator("#jac-stop")).to_be_disabled()


def test_the_page_explains_a_server_without_a_token(
    site: LiveServer, examples: Path, page: Any
) -> None:
    site.rt.settings.jac_examples_dir = examples
    page.goto(f"{site.url}/jac")
    refusal = page.locator("#jac-refusal")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("Running .jac programs needs JARVIS_API_TOKEN on the server")
    expect(page.locator("#jac-run")).to_be_disabled()
    page.locator("#jac-token").fill("anything")
    page.locator("#jac-connect").click()
    expect(refusal).to_contain_text("needs JARVIS_API_TOKEN")
    assert not (site.rt.settings.home / "jac").exists()


def test_the_page_explains_a_wrong_token(jac_site: LiveServer, page: Any) -> None:
    page.goto(f"{jac_site.url}/jac")
    page.locator("#jac-token").fill("wrong")
    page.locator("#jac-connect").click()
    expect(page.locator("#jac-refusal")).to_contain_text("The admin token was not accepted")
    page.locator("#jac-token").fill(TOKEN)
    page.locator("#jac-connect").click()
    expect(page.locator("#jac-refusal")).to_be_hidden()
    expect(page.locator('[data-program="example:hello.jac"]')).to_be_visible()
