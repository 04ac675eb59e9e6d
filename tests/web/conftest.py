"""Real Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, against a live server.

Every page a test opened is saved as a screenshot under ``artifacts/screenshots/`` when the
test ends (pass or fail), so what the tests saw can be looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.live_server import LiveServer
from jarvis import Jarvis, Settings

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # a rebinding attacker's name, resolving to this machine (tests/web/test_hostile_page.py)
    "--host-resolver-rules=MAP evil.test 127.0.0.1",
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not longer: Playwright's sync API keeps an asyncio loop
    running on this thread while it is open, which ``asyncio.run`` in later tests refuses."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium (scripts/setup.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; page errors (uncaught exceptions) fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def web_settings(home: Path) -> Settings:
    """The procedural teacher and no student: pages see real calls without a model."""
    return Settings(home=home, teacher_seed=11, student="none")


@pytest.fixture
def site(web_settings: Settings) -> Iterator[LiveServer]:
    rt = Jarvis(web_settings)
    rt.sync_tasks()
    with LiveServer(rt) as server:
        yield server
    rt.close()
