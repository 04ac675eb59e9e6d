"""The browser game at /game: a real Chromium plays levels that the live JARVIS server generates.

The page asks ``create_next_level`` then ``create_next_map`` (the procedural teacher answers),
draws the map on a canvas and runs the game; ``window.jarvisGame`` is its read-only state.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, Route, expect

from helpers.live_server import LiveServer
from jarvis.rpg.grid import map_to_tiles
from jarvis.rpg.models import Map

KEYS = {(0, -1): "ArrowUp", (0, 1): "ArrowDown", (-1, 0): "ArrowLeft", (1, 0): "ArrowRight"}
WASD = {(0, -1): "w", (0, 1): "s", (-1, 0): "a", (1, 0): "d"}
MAP_CALL = "**/v1/tasks/create_next_map/call"
LEVEL_CALL = "**/v1/tasks/create_next_level/call"


def state(page: Page) -> dict[str, Any]:
    """The game's read-only state, as the page exposes it."""
    result: dict[str, Any] = page.evaluate("window.jarvisGame")
    return result


def wait_for_status(page: Page, status: str, timeout: float = 15_000) -> dict[str, Any]:
    # a function, not an expression: the page's CSP forbids eval
    page.wait_for_function("(s) => window.jarvisGame.status === s", arg=status, timeout=timeout)
    return state(page)


def open_game(page: Page, site: LiveServer) -> dict[str, Any]:
    page.goto(f"{site.url}/game")
    return wait_for_status(page, "playing")


def walls(game: dict[str, Any]) -> list[str]:
    """The bordered tile rows of the game's map, drawn by the project's own grid code."""
    return map_to_tiles(Map.model_validate(game["map"]))


def blocked(rows: list[str], x: int, y: int) -> bool:
    """Is map tile (x, y) a wall, an obstacle or the border? (rows include the border)"""
    return rows[y + 1][x + 1] == "B"


def calls(site: LiveServer, task: str) -> list[dict[str, Any]]:
    return site.rt.store.recent_calls(task, limit=50)


# Which board tiles hold a blue (player) or red (enemy) pixel, read from the canvas right after
# the next frame is drawn; tiles are found from the canvas size and the bordered grid.
SAMPLE_CANVAS = """async () => {
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const g = window.jarvisGame;
  const c = document.getElementById('game-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  for (let i = 0; i < d.length; i += 4 * 7) colours.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
  const t = c.width / (g.map.level.width + 2);
  const tile = (x, y, test) => {
    for (let py = Math.floor((y + 1) * t); py < (y + 2) * t; py++)
      for (let px = Math.floor((x + 1) * t); px < (x + 2) * t; px++) {
        const i = 4 * (py * c.width + px);
        if (test(d[i], d[i+1], d[i+2])) return true;
      }
    return false;
  };
  const blue = (r, gr, b) => b > 180 && b > r + 60;
  const red = (r, gr, b) => r > 180 && r > gr + 60;
  return {
    colours: colours.size,
    player: tile(g.player.x, g.player.y, blue),
    enemies: g.enemies.map((e) => tile(e.x, e.y, red)),
    border_is_blue: tile(-1, -1, blue),
  };
}"""


def test_the_game_draws_a_map_that_came_from_the_api(page: Page, site: LiveServer) -> None:
    game = open_game(page, site)

    # the canvas really shows the board: many colours, the player and the enemies where the
    # map puts them (sampled first, before the enemies take their first step)
    drawn = page.evaluate(SAMPLE_CANVAS)
    assert drawn["colours"] > 20
    assert drawn["player"]
    assert all(drawn["enemies"])
    assert not drawn["border_is_blue"]  # the top-left corner is border wall

    # the map is the one the API answered, and so is the level
    logged = calls(site, "create_next_map")[0]
    assert game["map"] == logged["output"]
    assert game["level"] == calls(site, "create_next_level")[0]["output"]
    assert calls(site, "create_next_level")[0]["input"] == {"last_levels": [], "difficulty": 1}
    assert logged["input"] == {"level": game["level"]}
    assert game["player"]["x"] == logged["output"]["player_pos"]["x"]
    assert game["player"]["y"] == logged["output"]["player_pos"]["y"]
    assert game["player"]["hp"] == game["player"]["maxHp"]
    assert len(game["enemies"]) == len(logged["output"]["enemies"])

    # the HUD
    expect(page.locator("#hud-level")).to_have_text("1")
    expect(page.locator("#hud-difficulty")).to_have_text(str(game["level"]["difficulty"]))
    expect(page.locator("#hud-time")).to_contain_text(":")
    expect(page.locator("#hud-enemies")).to_have_text(str(len(game["enemies"])))
    expect(page.locator("#hud-hp")).to_contain_text("100")
    expect(page.locator("#hud-level-source")).to_have_text("teacher")
    expect(page.locator("#hud-map-source")).to_have_text("teacher")
    expect(page.locator("#hud-map-latency")).to_contain_text("ms")
    expect(page.locator("#game-overlay")).to_be_hidden()


def test_arrow_keys_and_wasd_move_the_player_and_walls_block(page: Page, site: LiveServer) -> None:
    game = open_game(page, site)
    rows = walls(game)

    def free(x: int, y: int, enemies: list[dict[str, int]]) -> bool:
        return not blocked(rows, x, y) and {"x": x, "y": y} not in [
            {"x": e["x"], "y": e["y"]} for e in enemies
        ]

    # walk in a straight line with no enemy on it, one tile per key press, until a wall
    start = game["player"]
    enemy_tiles = {(e["x"], e["y"]) for e in game["enemies"]}

    def line(d: tuple[int, int]) -> list[tuple[int, int]]:
        out, (x, y) = [], (start["x"], start["y"])
        while not blocked(rows, x + d[0], y + d[1]):
            x, y = x + d[0], y + d[1]
            out.append((x, y))
        return out

    candidates = [d for d in KEYS if line(d) and not enemy_tiles & set(line(d))]
    assert candidates, "the player is boxed in"
    direction = min(candidates, key=lambda d: len(line(d)))

    player = start
    for _ in line(direction):
        before = state(page)
        assert free(player["x"] + direction[0], player["y"] + direction[1], before["enemies"])
        page.keyboard.press(KEYS[direction])
        after = state(page)["player"]
        assert (after["x"], after["y"]) == (player["x"] + direction[0], player["y"] + direction[1])
        player = after

    # the next tile is a wall (or the border): pressing into it does not move
    assert blocked(rows, player["x"] + direction[0], player["y"] + direction[1])
    page.keyboard.press(KEYS[direction])
    page.keyboard.press(WASD[direction])
    after = state(page)["player"]
    assert (after["x"], after["y"]) == (player["x"], player["y"])

    # WASD walks back the way it came
    back = (-direction[0], -direction[1])
    page.keyboard.press(WASD[back])
    after = state(page)["player"]
    assert (after["x"], after["y"]) == (player["x"] + back[0], player["y"] + back[1])

    # arrow keys never scroll the page
    assert page.evaluate("window.scrollY") == 0


def test_a_failed_call_shows_the_api_message_and_retry_repeats_it(
    page: Page, site: LiveServer
) -> None:
    def overloaded(route: Route) -> None:
        route.fulfill(
            status=503,
            json={"error": {"message": "engine overloaded", "type": "server_error", "code": None}},
        )

    page.route(MAP_CALL, overloaded)
    page.goto(f"{site.url}/game")
    game = wait_for_status(page, "error")

    error = page.locator("#game-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("engine overloaded")
    expect(error).to_contain_text("503")
    expect(error).to_contain_text("create_next_map")
    expect(page.locator("#game-overlay-title")).to_have_text("Could not generate level 1")
    retry = page.locator("#game-retry")
    expect(retry).to_be_visible()
    assert game["step"] == "create_next_map"
    assert len(calls(site, "create_next_level")) == 1  # the level call worked
    assert calls(site, "create_next_map") == []  # the 503 never reached the server

    page.unroute(MAP_CALL)
    retry.click()
    game = wait_for_status(page, "playing")

    # Retry repeated only the call that failed, for the level that was already generated
    assert len(calls(site, "create_next_level")) == 1
    assert len(calls(site, "create_next_map")) == 1
    assert game["map"] == calls(site, "create_next_map")[0]["output"]
    assert calls(site, "create_next_map")[0]["input"]["level"] == game["level"]
    expect(page.locator("#game-error")).to_be_hidden()
    expect(page.locator("#hud-level")).to_have_text("1")


def test_an_invalid_answer_is_a_failed_call_too(page: Page, site: LiveServer) -> None:
    def invalid(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body.update(valid=False, reason="enemy (3, 3) is inside a wall")
        route.fulfill(response=response, json=body)

    page.route(MAP_CALL, invalid)
    page.goto(f"{site.url}/game")
    wait_for_status(page, "error")
    expect(page.locator("#game-error")).to_contain_text("enemy (3, 3) is inside a wall")
    page.unroute(MAP_CALL)
    page.locator("#game-retry").click()
    wait_for_status(page, "playing")


def test_the_hud_names_the_model_behind_the_level_and_the_map(page: Page, site: LiveServer) -> None:
    # the procedural teacher answers both calls here; the envelopes are relabelled on the way
    # to show how a student's answer and a fallback read in the HUD
    def relabel(**fields: Any) -> Callable[[Route], None]:
        def handler(route: Route) -> None:
            response = route.fetch()
            body = response.json()
            body.update(fields)
            route.fulfill(response=response, json=body)

        return handler

    page.route(LEVEL_CALL, relabel(source="student", version="v0003", latency_ms=1234.5))
    page.route(MAP_CALL, relabel(source="teacher", fallback=True, attempts=2))
    game = open_game(page, site)

    expect(page.locator("#hud-level-source")).to_have_text("student v0003")
    expect(page.locator("#hud-level-latency")).to_have_text("1.23 s")
    expect(page.locator("#hud-map-source")).to_have_text("teacher · fallback")
    expect(page.locator("#hud-map-latency")).to_contain_text("2 attempts")
    assert game["sources"]["level"]["label"] == "student v0003"
    assert game["sources"]["map"]["fallback"] is True


def step_towards_enemies(game: dict[str, Any], rows: list[str]) -> tuple[int, int] | None:
    """The first step of a shortest path to a tile next to an enemy (None: already there)."""
    me = (game["player"]["x"], game["player"]["y"])
    enemies = {(e["x"], e["y"]) for e in game["enemies"]}

    def near_enemy(p: tuple[int, int]) -> bool:
        return any(max(abs(p[0] - x), abs(p[1] - y)) == 1 for x, y in enemies)

    if near_enemy(me):
        return None
    first: dict[tuple[int, int], tuple[int, int]] = {me: (0, 0)}
    queue = deque([me])
    while queue:
        here = queue.popleft()
        for d in KEYS:
            nxt = (here[0] + d[0], here[1] + d[1])
            if nxt in first or nxt in enemies or blocked(rows, *nxt):
                continue
            first[nxt] = d if here == me else first[here]
            if near_enemy(nxt):
                return first[nxt]
            queue.append(nxt)
    return (0, 0)  # no way to any enemy: wait for them to come


def test_clearing_a_level_with_the_keyboard_fetches_the_next_one(
    page: Page, site: LiveServer
) -> None:
    game = open_game(page, site)
    first_level = game["level"]
    rows = walls(game)

    # play: walk towards the nearest enemy (shortest path) and attack when next to one
    deadline = time.monotonic() + 25
    while game["status"] == "playing":
        assert time.monotonic() < deadline, f"level not cleared in time: {game}"
        step = step_towards_enemies(game, rows)
        if step is None:
            page.keyboard.press("Space")
            page.wait_for_timeout(80)
        elif step == (0, 0):
            page.wait_for_timeout(100)
        else:
            page.keyboard.press(KEYS[step])
            page.wait_for_timeout(30)
        game = state(page)

    assert game["status"] in ("cleared", "loading", "playing"), game
    page.wait_for_function(
        "() => window.jarvisGame.levelNumber === 2 && window.jarvisGame.status === 'playing'"
    )
    game = state(page)

    # the next level was asked with the previous one, as the original LevelManager did
    level_calls = calls(site, "create_next_level")
    assert len(level_calls) == 2
    assert level_calls[0]["input"] == {"last_levels": [first_level], "difficulty": 1}
    assert game["level"] == level_calls[0]["output"]
    assert game["map"] == calls(site, "create_next_map")[0]["output"]
    assert game["player"]["hp"] == game["player"]["maxHp"]
    expect(page.locator("#hud-level")).to_have_text(str(game["level"]["name"]))
    # the difficulty rises after every second level
    assert game["nextDifficulty"] == 2


def test_running_out_of_time_offers_retry_and_restart(page: Page, site: LiveServer) -> None:
    def two_seconds(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["output"]["time"] = 2
        route.fulfill(response=response, json=body)

    page.route(LEVEL_CALL, two_seconds)
    game = open_game(page, site)
    assert game["level"]["time"] == 2
    start = game["player"]

    game = wait_for_status(page, "dead", timeout=10_000)
    assert game["reason"] == "timeout"
    expect(page.locator("#game-overlay-title")).to_have_text("Time's up!")
    expect(page.locator("#hud-time")).to_have_text("0:00")

    # "Retry level" replays the same map from the start, without asking the API again
    page.locator("#game-retry-level").click()
    game = state(page)
    assert game["status"] == "playing"
    assert (game["player"]["x"], game["player"]["y"]) == (start["x"], start["y"])
    assert game["timeLeft"] > 1.5
    assert len(calls(site, "create_next_map")) == 1

    # after the second timeout, "Restart" starts a new run from level 1
    page.unroute(LEVEL_CALL)
    wait_for_status(page, "dead", timeout=10_000)
    page.locator("#game-overlay-restart").click()
    page.wait_for_function(
        "() => window.jarvisGame.status === 'playing' && window.jarvisGame.level.time > 2"
    )
    assert calls(site, "create_next_level")[0]["input"] == {"last_levels": [], "difficulty": 1}
    assert len(calls(site, "create_next_map")) == 2
