"""The dashboard in a real browser, against a live server with real calls in its store."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from helpers.live_server import LiveServer
from jarvis import Jarvis
from jarvis.demo.play import LevelManager


def play(rt: Jarvis, levels: int) -> None:
    """Calls flow as the game makes them: a level, then its map, through the router."""
    manager = LevelManager(rt)
    for _ in range(levels):
        manager.next_level()


def fake_training_run(rt: Jarvis, task: str, losses: list[float], total: int) -> int:
    """A run as the training process records it while it works."""
    run_id = rt.store.runs.enqueue(task, {"train_examples": 10}, "requested (test)")
    assert run_id is not None
    assert rt.store.runs.claim(run_id, pid=1)
    rt.store.runs.progress(
        run_id,
        phase="training",
        step=len(losses),
        total_steps=total,
        loss=losses[-1],
        losses=losses,
        examples_per_s=1.5,
        eta_s=42.0,
    )
    return run_id


def test_the_overview_shows_every_task_with_its_numbers(site: LiveServer, page: Any) -> None:
    play(site.rt, 4)
    page.goto(site.url)
    row = page.locator('tr[data-task="create_next_level"]')
    expect(row).to_contain_text("4")  # calls
    expect(row).to_contain_text("→ 200")  # progress to the default threshold
    expect(row).to_contain_text("teacher only")
    expect(page.locator('tr[data-task="create_next_map"]')).to_be_visible()
    expect(page.locator("#teacher")).to_contain_text("procedural oracle")
    expect(page.locator("#charts svg path.line").first).to_be_attached()


def test_a_live_update_arrives_without_a_reload(site: LiveServer, page: Any) -> None:
    play(site.rt, 2)
    page.goto(site.url)
    calls = page.locator('tr[data-task="create_next_map"] td').nth(1)
    expect(calls).to_have_text("2")
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.__same_document = true")
    play(site.rt, 3)
    expect(calls).to_have_text("5", timeout=10_000)
    assert page.evaluate("window.__same_document") is True


def test_the_task_page_shows_calls_runs_and_versions(
    site: LiveServer, page: Any, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    rt = site.rt
    play(rt, 3)
    fake_training_run(rt, "create_next_map", [2.1, 1.4, 0.9, 0.7], total=10)
    version = make_version(rt, "create_next_map", 1)
    card: dict[str, Any] = {
        "train": {"examples": 10, "steps": 4, "first_loss": 2.1, "final_loss": 0.7},
        "gate": {
            "floor": 0.9,
            "candidate": {"examples": 6, "format_pass": 1.0, "semantic_pass": 0.95},
            "verdict": {"promote": True, "reason": "semantic pass 95.0% ≥ floor 90.0%"},
        },
    }
    rt.store.versions.set_status("create_next_map", version, "candidate", card)

    page.goto(f"{site.url}/tasks/create_next_map")
    expect(page.locator("#task-name")).to_have_text("create_next_map")
    # recent calls: three maps, each drawn as its tile grid
    expect(page.locator("#calls tbody tr")).to_have_count(3)
    expect(page.locator("#calls canvas.tiles")).to_have_count(3)
    # the running training run with its progress and loss curve
    run = page.locator(".run").first
    expect(run).to_contain_text("step 4 / 10")
    expect(run).to_contain_text("loss 0.7000")
    expect(run.locator("svg path.line")).to_be_attached()
    # the version, its gate table, and promotion from the page
    v = page.locator(f'.version[data-version="{version}"]')
    expect(v.locator("table.gate")).to_contain_text("95.0%")
    expect(v).to_contain_text("semantic pass 95.0%")
    v.locator("button[data-promote]").click()
    expect(page.locator("#banner")).to_contain_text(f"active version: {version}")
    expect(v.locator(".badge").first).to_have_text("active")
    assert rt.store.versions.active("create_next_map") == version
    page.locator("#rollback").click()
    expect(page.locator("#banner")).to_contain_text("none (teacher)")
    assert rt.store.versions.active("create_next_map") is None


def test_an_exposed_server_asks_for_the_token(site: LiveServer, page: Any) -> None:
    app = site.server.config.app
    app.state.exposed, app.state.api_token = True, "s3cret"
    play(site.rt, 6)
    page.goto(f"{site.url}/tasks/create_next_level")
    token = page.locator("#token")
    expect(token).to_be_visible()
    page.locator("#train-now").click()
    expect(page.locator("#banner")).to_contain_text("401")
    token.fill("s3cret")
    page.locator("#train-now").click()
    expect(page.locator("#banner")).to_contain_text(re.compile(r"training run #\d+ queued"))
    assert site.rt.store.runs.next_queued() is not None


def test_api_errors_show_as_readable_messages(site: LiveServer, page: Any) -> None:
    page.route(
        "**/api/overview",
        lambda route: route.fulfill(
            status=500,
            content_type="application/json",
            body='{"error": {"message": "the store is locked", "type": "server_error"}}',
        ),
    )
    page.goto(site.url)
    expect(page.locator("#banner")).to_contain_text("the store is locked")
    expect(page.locator("#banner")).to_contain_text("500")
