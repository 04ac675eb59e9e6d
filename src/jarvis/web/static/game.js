// Spud-nik: SOLO in the browser. Every level and its map come from the JARVIS API
// (create_next_level, then create_next_map), exactly as the original game's LevelManager
// asked its LLM; the game itself is a small tile game drawn on a <canvas>.
//
// window.jarvisGame is a read-only snapshot of the game state (for people and for tests).
"use strict";

(() => {
  // -- rules ---------------------------------------------------------------------------------
  const TILE = 32; // px per tile, as in the original; a small map is drawn up to MAX_TILE
  const MAX_TILE = 48;
  const MIN_TILE = 10;
  const KEEP_LEVELS = 3; // the last levels sent to create_next_level
  const PLAYER_HP = 100;
  const ENEMY_HP = 3; // hits
  const BITE = 10; // damage an enemy next to the player does on each of its turns
  const ATTACK_COOLDOWN_MS = 250;
  const REPEAT_MOVE_MS = 110; // a held key moves at most this often
  const CLEARED_PAUSE_MS = 1000;
  const MAX_SIDE = 120; // tiles: a bigger map is refused rather than drawn as dust
  const enemyStepMs = (difficulty) => Math.max(320, 760 - 70 * (Math.max(1, Number(difficulty) || 1) - 1));

  const DIRS = {
    up: [0, -1],
    down: [0, 1],
    left: [-1, 0],
    right: [1, 0],
  };
  const KEYS = {
    ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right",
    KeyW: "up", KeyS: "down", KeyA: "left", KeyD: "right",
    w: "up", s: "down", a: "left", d: "right",
  };

  // -- state ---------------------------------------------------------------------------------
  // progression (the original LevelManager): levels played so far and the difficulty to ask for
  const run = { prevLevels: [], difficulty: 1, generated: 0 };
  let pending = null; // {level, levelEnv}: a level whose map is still to be fetched
  let loadSeq = 0; // bumps on restart so a late answer of an abandoned load is ignored
  let clearTimer = null;

  const game = {
    status: "loading", // loading | playing | cleared | dead | error
    reason: null, // why "dead": "killed" | "timeout"
    error: null, // the message shown with "error"
    step: null, // the call in flight or failed: "create_next_level" | "create_next_map"
    stepStarted: 0,
    levelNumber: 0, // levels generated in this run (1-based), what the HUD calls "level"
    level: null, // the Level from create_next_level
    map: null, // the Map from create_next_map, as received
    sources: { level: null, map: null },
    world: null, // {cols, rows, blocked: Uint8Array, start: {x,y}, enemies: [{x,y}]} (bordered)
    player: null,
    enemies: [],
    timeLeft: 0,
    enemyClock: 0,
    lastAttack: -1e9,
    lastMove: -1e9,
  };
  const fx = { attacks: [], puffs: [], pops: [], hurtAt: -1e9, bumpAt: -1e9 };

  // -- DOM -----------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const canvas = $("game-canvas");
  const ctx = canvas.getContext("2d");
  const stage = $("game-stage");
  const overlay = {
    root: $("game-overlay"),
    spinner: $("game-spinner"),
    title: $("game-overlay-title"),
    text: $("game-overlay-text"),
    error: $("game-error"),
    retry: $("game-retry"),
    retryLevel: $("game-retry-level"),
    restart: $("game-overlay-restart"),
    hint: $("game-overlay-hint"),
  };
  const textCache = new Map();
  function setText(id, value) {
    const s = String(value);
    if (textCache.get(id) === s) return;
    textCache.set(id, s);
    const el = $(id);
    if (el) el.textContent = s;
  }

  // -- the API -------------------------------------------------------------------------------
  async function callTask(task, input) {
    const env = await J.api(`/v1/tasks/${task}/call`, { method: "POST", body: { input } });
    if (!env || typeof env !== "object" || env.output === undefined) {
      throw new Error(`${task} answered without an output`);
    }
    if (env.valid === false) {
      const who = sourceLabel(env);
      throw new Error(`${task} gave an unusable answer (${who}): ${env.reason || "invalid output"}`);
    }
    return env;
  }

  function sourceLabel(env) {
    let label = env.source === "student" ? `student ${env.version || ""}`.trim() : env.source || "unknown";
    if (env.fallback) label += " · fallback";
    return label;
  }

  function sourceInfo(env) {
    return {
      source: env.source ?? null,
      version: env.version ?? null,
      fallback: Boolean(env.fallback),
      attempts: env.attempts ?? null,
      latency_ms: typeof env.latency_ms === "number" ? env.latency_ms : null,
      label: sourceLabel(env),
    };
  }

  const isInt = (v) => Number.isInteger(v);

  function checkLevel(level) {
    if (!level || typeof level !== "object") throw new Error("create_next_level returned no level");
    for (const k of ["width", "height"]) {
      if (!isInt(level[k]) || level[k] < 1) throw new Error(`the level's ${k} is not a positive integer`);
      if (level[k] > MAX_SIDE) throw new Error(`the level is too big to play (${k} ${level[k]} > ${MAX_SIDE})`);
    }
  }

  // The bordered tile grid, drawn the way the original (and jarvis.rpg.grid) draws it: walls,
  // then obstacles, then enemies, then the player, later layers over earlier ones, items outside
  // the grid skipped, and a border of wall around the width x height grid.
  function buildWorld(map) {
    if (!map || typeof map !== "object" || !map.level) throw new Error("create_next_map returned no map");
    checkLevel(map.level);
    const w = map.level.width, h = map.level.height;
    const cells = Array.from({ length: h }, () => new Array(w).fill("."));
    const inside = (p) => p && isInt(p.x) && isInt(p.y) && p.x >= 0 && p.x < w && p.y >= 0 && p.y < h;
    for (const wall of map.walls || []) {
      const a = wall && wall.start_pos, b = wall && wall.end_pos;
      if (!a || !b || ![a.x, a.y, b.x, b.y].every(isInt)) continue;
      for (let x = Math.max(Math.min(a.x, b.x), 0); x <= Math.min(Math.max(a.x, b.x), w - 1); x++)
        for (let y = Math.max(Math.min(a.y, b.y), 0); y <= Math.min(Math.max(a.y, b.y), h - 1); y++)
          cells[y][x] = "B";
    }
    for (const o of map.small_obstacles || []) if (inside(o)) cells[o.y][o.x] = "B";
    for (const e of map.enemies || []) if (inside(e)) cells[e.y][e.x] = "E";
    if (!inside(map.player_pos)) throw new Error("the map puts the player outside the grid");
    cells[map.player_pos.y][map.player_pos.x] = "P";

    const cols = w + 2, rows = h + 2;
    const blocked = new Uint8Array(cols * rows).fill(1);
    const enemies = [];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const c = cells[y][x];
        blocked[(y + 1) * cols + x + 1] = c === "B" ? 1 : 0;
        if (c === "E") enemies.push({ x: x + 1, y: y + 1 });
      }
    if (!enemies.length) throw new Error("the map has no enemies inside the grid");
    return { cols, rows, blocked, start: { x: map.player_pos.x + 1, y: map.player_pos.y + 1 }, enemies };
  }

  // -- loading levels ------------------------------------------------------------------------
  // Generate the next level: create_next_level (unless a level is already waiting for its map),
  // then create_next_map. The board stays on screen under the overlay while a call is in
  // flight; a failure keeps what succeeded, so Retry repeats only the call that failed.
  async function loadNext() {
    clearTimeout(clearTimer);
    const seq = ++loadSeq;
    game.error = null;
    setStatus("loading");
    try {
      if (!pending) {
        beginStep("create_next_level");
        const env = await callTask("create_next_level", {
          last_levels: run.prevLevels.slice(-KEEP_LEVELS),
          difficulty: run.difficulty,
        });
        if (seq !== loadSeq) return;
        checkLevel(env.output);
        pending = { level: env.output, levelEnv: env };
      }
      beginStep("create_next_map");
      const env = await callTask("create_next_map", { level: pending.level });
      if (seq !== loadSeq) return;
      const world = buildWorld(env.output);
      // both calls worked: this level counts (the LevelManager's bookkeeping)
      run.prevLevels = [...run.prevLevels, pending.level].slice(-KEEP_LEVELS);
      run.generated += 1;
      if (run.generated % 2 === 0) run.difficulty += 1;
      game.levelNumber = run.generated;
      game.level = pending.level;
      game.map = env.output;
      game.world = world;
      game.sources = { level: sourceInfo(pending.levelEnv), map: sourceInfo(env) };
      pending = null;
      startLevel();
    } catch (err) {
      if (seq !== loadSeq) return;
      if (err && err.name === "AbortError") return;
      game.error = (err && err.message) || String(err);
      setStatus("error");
    }
  }

  function beginStep(step) {
    game.step = step;
    game.stepStarted = performance.now();
    renderOverlay();
  }

  function restart() {
    run.prevLevels = [];
    run.difficulty = 1;
    run.generated = 0;
    pending = null;
    loadNext();
  }

  // (Re)start the current map from its initial layout: also what "Retry level" does.
  function startLevel() {
    const w = game.world;
    const now = performance.now();
    game.player = { x: w.start.x, y: w.start.y, hp: PLAYER_HP, facing: "down", fromX: w.start.x, fromY: w.start.y, movedAt: 0 };
    game.enemies = w.enemies.map((e, i) => ({
      id: i, x: e.x, y: e.y, hp: ENEMY_HP, fromX: e.x, fromY: e.y, movedAt: 0, hitAt: -1e9, phase: i * 1.7,
    }));
    const t = Number(game.level && game.level.time);
    game.timeLeft = Number.isFinite(t) && t > 0 ? t : 300;
    game.enemyClock = 0;
    game.lastAttack = -1e9;
    game.reason = null;
    game.step = null;
    fx.attacks = []; fx.puffs = []; fx.pops = [];
    fx.hurtAt = -1e9;
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    fitCanvas();
    setStatus("playing");
    lastFrame = now;
  }

  function setStatus(status) {
    game.status = status;
    renderOverlay();
    renderHud(true);
  }

  // -- rules: moving, attacking, enemies ----------------------------------------------------
  const idx = (x, y) => y * game.world.cols + x;
  const isWall = (x, y) =>
    x < 0 || y < 0 || x >= game.world.cols || y >= game.world.rows || game.world.blocked[idx(x, y)] === 1;
  const enemyAt = (x, y) => game.enemies.find((e) => e.x === x && e.y === y);

  function movePlayer(dir, now) {
    const p = game.player;
    const [dx, dy] = DIRS[dir];
    p.facing = dir;
    const nx = p.x + dx, ny = p.y + dy;
    if (isWall(nx, ny) || enemyAt(nx, ny)) {
      fx.bumpAt = now;
      return;
    }
    p.fromX = drawPos(p, now).x;
    p.fromY = drawPos(p, now).y;
    p.x = nx;
    p.y = ny;
    p.movedAt = now;
    game.lastMove = now;
  }

  function attack(now) {
    if (now - game.lastAttack < ATTACK_COOLDOWN_MS) return;
    game.lastAttack = now;
    const p = game.player;
    fx.attacks.push({ x: p.x, y: p.y, at: now });
    for (const e of game.enemies) {
      if (Math.max(Math.abs(e.x - p.x), Math.abs(e.y - p.y)) !== 1) continue;
      e.hp -= 1;
      e.hitAt = now;
      if (e.hp <= 0) fx.puffs.push({ x: e.x, y: e.y, at: now });
    }
    game.enemies = game.enemies.filter((e) => e.hp > 0);
    if (!game.enemies.length) levelCleared();
  }

  // Distances from the player over open tiles (breadth-first), for the enemies to follow.
  function distanceField() {
    const { cols, rows } = game.world;
    const dist = new Int32Array(cols * rows).fill(-1);
    const queue = new Int32Array(cols * rows);
    let head = 0, tail = 0;
    const start = idx(game.player.x, game.player.y);
    dist[start] = 0;
    queue[tail++] = start;
    while (head < tail) {
      const i = queue[head++];
      const x = i % cols, y = (i - x) / cols;
      for (const [dx, dy] of Object.values(DIRS)) {
        const nx = x + dx, ny = y + dy;
        if (isWall(nx, ny)) continue;
        const j = idx(nx, ny);
        if (dist[j] !== -1) continue;
        dist[j] = dist[i] + 1;
        queue[tail++] = j;
      }
    }
    return dist;
  }

  function enemiesAct(now) {
    const p = game.player;
    const dist = distanceField();
    const d = (x, y) => (isWall(x, y) ? -1 : dist[idx(x, y)]);
    // the closest act first, so a queue of enemies shuffles forward together
    const order = [...game.enemies].sort((a, b) => (d(a.x, a.y) >>> 0) - (d(b.x, b.y) >>> 0));
    for (const e of order) {
      if (Math.abs(e.x - p.x) + Math.abs(e.y - p.y) === 1) {
        p.hp = Math.max(0, p.hp - BITE);
        fx.hurtAt = now;
        fx.pops.push({ x: p.x, y: p.y, at: now, text: `-${BITE}` });
        e.lungeAt = now;
        e.lungeDx = p.x - e.x;
        e.lungeDy = p.y - e.y;
        if (p.hp <= 0) {
          endLevel("killed");
          return;
        }
        continue;
      }
      const here = d(e.x, e.y);
      const options = Object.values(DIRS)
        .map(([dx, dy]) => ({ x: e.x + dx, y: e.y + dy }))
        .filter((c) => !isWall(c.x, c.y) && !enemyAt(c.x, c.y) && !(c.x === p.x && c.y === p.y));
      let best;
      if (here > 0) {
        const closer = options.filter((c) => d(c.x, c.y) >= 0 && d(c.x, c.y) < here);
        best = closer[Math.floor(Math.random() * closer.length)];
      } else if (options.length && Math.random() < 0.5) {
        best = options[Math.floor(Math.random() * options.length)]; // cannot reach: wander
      }
      if (!best) continue;
      const from = drawPos(e, now);
      e.fromX = from.x;
      e.fromY = from.y;
      e.x = best.x;
      e.y = best.y;
      e.movedAt = now;
    }
  }

  function levelCleared() {
    setStatus("cleared");
    const seq = loadSeq;
    clearTimer = setTimeout(() => {
      if (seq === loadSeq && game.status === "cleared") loadNext();
    }, CLEARED_PAUSE_MS);
  }

  function endLevel(reason) {
    game.reason = reason;
    setStatus("dead");
  }

  // -- input ---------------------------------------------------------------------------------
  window.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const dir = KEYS[ev.code] || KEYS[ev.key];
    const isSpace = ev.code === "Space" || ev.key === " ";
    if (dir || isSpace) ev.preventDefault(); // never scroll the page
    const now = performance.now();
    if (game.status === "playing") {
      if (dir) {
        if (ev.repeat && now - game.lastMove < REPEAT_MOVE_MS) return;
        movePlayer(dir, now);
      } else if (isSpace) {
        attack(now);
      }
      return;
    }
    if (ev.key === "Enter") {
      const primary = [overlay.retry, overlay.retryLevel].find((b) => !b.hidden);
      if (primary) {
        ev.preventDefault();
        primary.click();
      }
    }
  });

  function onButton(el, fn) {
    el.addEventListener("click", () => {
      el.blur(); // so Space in the game never presses a button
      fn();
    });
  }
  onButton(overlay.retry, () => loadNext());
  onButton(overlay.retryLevel, () => {
    if (game.world) startLevel();
  });
  onButton(overlay.restart, restart);
  onButton($("game-restart"), restart);

  // -- overlay and HUD -----------------------------------------------------------------------
  function renderOverlay() {
    const s = game.status;
    const next = game.levelNumber + (s === "loading" || s === "error" || s === "cleared" ? 1 : 0);
    overlay.root.hidden = s === "playing";
    overlay.root.dataset.status = s;
    overlay.spinner.hidden = !(s === "loading" || s === "cleared");
    overlay.error.hidden = s !== "error";
    overlay.retry.hidden = s !== "error";
    overlay.retryLevel.hidden = !(s === "dead" && game.world);
    overlay.restart.hidden = !(s === "dead" || s === "error");
    overlay.hint.hidden = !(s === "dead" || s === "error");
    if (s === "loading") {
      setText("game-overlay-title", game.levelNumber ? `Generating level ${next}…` : "Spud-nik: SOLO");
      setText("game-overlay-text", loadingText());
    } else if (s === "cleared") {
      setText("game-overlay-title", `Level ${game.levelNumber} cleared!`);
      setText("game-overlay-text", `Generating level ${next}…`);
    } else if (s === "dead") {
      const left = game.enemies.length;
      setText("game-overlay-title", game.reason === "timeout" ? "Time's up!" : "You were defeated");
      setText(
        "game-overlay-text",
        game.reason === "timeout"
          ? `${left} ${left === 1 ? "enemy" : "enemies"} still standing. Try the same map again, or start over.`
          : "The enemies got you. Try the same map again, or start over.",
      );
    } else if (s === "error") {
      setText("game-overlay-title", `Could not generate level ${next}`);
      setText(
        "game-overlay-text",
        game.world
          ? "The last board stays below. Retry repeats only the call that failed."
          : "Retry repeats only the call that failed.",
      );
      setText("game-error", game.error || "unknown error");
    }
  }

  function loadingText() {
    const secs = ((performance.now() - game.stepStarted) / 1000).toFixed(1);
    const what = game.step === "create_next_map" ? "map" : "level";
    return game.step ? `Asking JARVIS for the ${what} (${game.step})… ${secs} s` : "Starting…";
  }

  function fmtTime(s) {
    const t = Math.max(0, Math.ceil(s));
    return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}`;
  }

  function renderSource(which, info) {
    const badge = $(`hud-${which}-source`);
    setText(`hud-${which}-source`, info ? info.label : "–");
    badge.className = "hud-badge" + (info ? ` ${info.source === "student" ? "student" : "teacher"}` : "") + (info && info.fallback ? " fallback" : "");
    let extra = "";
    if (info && info.latency_ms !== null) extra = J.fmt.ms(info.latency_ms);
    if (info && info.attempts > 1) extra += ` · ${info.attempts} attempts`;
    setText(`hud-${which}-latency`, extra);
  }

  function renderHud(full = false) {
    const p = game.player;
    const hp = p ? p.hp : null;
    setText("hud-level", game.level ? game.level.name ?? game.levelNumber : "–");
    setText("hud-difficulty", game.level ? game.level.difficulty ?? "–" : "–");
    setText("hud-time", game.world ? fmtTime(game.timeLeft) : "–:––");
    setText("hud-enemies", game.world ? game.enemies.length : "–");
    setText("hud-hp", hp === null ? "–" : `${hp} / ${PLAYER_HP}`);
    const frac = hp === null ? 1 : hp / PLAYER_HP;
    const bar = $("hud-hp-bar");
    bar.style.width = `${(100 * frac).toFixed(1)}%`;
    bar.dataset.level = frac > 0.5 ? "ok" : frac > 0.25 ? "low" : "critical";
    $("hud-hp-track").setAttribute("aria-valuenow", String(hp ?? PLAYER_HP));
    $("hud-time").classList.toggle("low", Boolean(game.world) && game.timeLeft <= 15 && game.status === "playing");
    const statusText = {
      loading: "Generating…",
      playing: "Playing",
      cleared: "Level cleared",
      dead: game.reason === "timeout" ? "Out of time" : "Defeated",
      error: "Call failed",
    }[game.status];
    setText("hud-status", statusText);
    $("hud-status").dataset.status = game.status;
    if (full) {
      renderSource("level", game.sources.level);
      renderSource("map", game.sources.map);
    }
  }

  // -- drawing -------------------------------------------------------------------------------
  let tilePx = TILE;
  let dpr = 1;
  let background = null; // the static layer (floor and walls), redrawn on resize or new level

  function gridSize() {
    return game.world ? [game.world.cols, game.world.rows] : [14, 12];
  }

  function fitCanvas() {
    const [cols, rows] = gridSize();
    const styles = getComputedStyle(stage);
    const padX = parseFloat(styles.paddingLeft) + parseFloat(styles.paddingRight);
    const availW = Math.max(160, stage.clientWidth - padX);
    const top = stage.getBoundingClientRect().top + window.scrollY;
    const availH = Math.max(240, window.innerHeight - Math.max(0, top) - 64);
    tilePx = Math.max(MIN_TILE, Math.min(MAX_TILE, Math.floor(Math.min(availW / cols, availH / rows))));
    dpr = Math.min(2, window.devicePixelRatio || 1);
    canvas.width = Math.round(cols * tilePx * dpr);
    canvas.height = Math.round(rows * tilePx * dpr);
    canvas.style.width = `${cols * tilePx}px`;
    canvas.style.height = `${rows * tilePx}px`;
    background = null;
  }

  // a stable pseudo-random number per tile, for texture
  const hash = (x, y, k = 0) => {
    let n = (x * 374761393 + y * 668265263 + k * 2147483647) | 0;
    n = Math.imul(n ^ (n >>> 13), 1274126177);
    return ((n ^ (n >>> 16)) >>> 0) / 4294967295;
  };

  function paintBackground() {
    const [cols, rows] = gridSize();
    const T = tilePx;
    const bg = document.createElement("canvas");
    bg.width = canvas.width;
    bg.height = canvas.height;
    const g = bg.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const wall = (x, y) =>
      game.world ? isWall(x, y) : x <= 0 || y <= 0 || x >= cols - 1 || y >= rows - 1;
    for (let y = 0; y < rows; y++)
      for (let x = 0; x < cols; x++) {
        const px = x * T, py = y * T;
        if (wall(x, y)) {
          const border = x === 0 || y === 0 || x === cols - 1 || y === rows - 1;
          g.fillStyle = border ? "#2a323d" : "#3a4554";
          g.fillRect(px, py, T, T);
          // bricks: two courses, offset
          g.fillStyle = border ? "#323b47" : "#465364";
          const m = Math.max(1, T / 16);
          g.fillRect(px + m, py + m, T / 2 - 1.5 * m, T / 2 - 1.5 * m);
          g.fillRect(px + T / 2 + m / 2, py + m, T / 2 - 1.5 * m, T / 2 - 1.5 * m);
          g.fillRect(px + m, py + T / 2 + m / 2, T / 4 - 1.5 * m, T / 2 - 1.5 * m);
          g.fillRect(px + T / 4 + m / 2, py + T / 2 + m / 2, T / 2 - m, T / 2 - 1.5 * m);
          g.fillRect(px + (3 * T) / 4 + m / 2, py + T / 2 + m / 2, T / 4 - 1.5 * m, T / 2 - 1.5 * m);
          // light from the top left
          g.fillStyle = "rgba(255,255,255,0.07)";
          g.fillRect(px, py, T, m);
          g.fillStyle = "rgba(0,0,0,0.25)";
          g.fillRect(px, py + T - m, T, m);
        } else {
          g.fillStyle = (x + y) % 2 ? "#18222c" : "#1b2631";
          g.fillRect(px, py, T, T);
          // a few pebbles
          if (hash(x, y) > 0.55) {
            g.fillStyle = "rgba(140,170,190,0.10)";
            const r = Math.max(1, T * (0.04 + 0.04 * hash(x, y, 1)));
            g.beginPath();
            g.arc(px + T * (0.2 + 0.6 * hash(x, y, 2)), py + T * (0.2 + 0.6 * hash(x, y, 3)), r, 0, Math.PI * 2);
            g.fill();
          }
          // a shadow under the wall above and left
          g.fillStyle = "rgba(0,0,0,0.28)";
          if (wall(x, y - 1)) g.fillRect(px, py, T, T * 0.16);
          if (wall(x - 1, y)) g.fillRect(px, py, T * 0.1, T);
        }
      }
    return bg;
  }

  function drawPos(o, now) {
    const k = o.movedAt ? Math.min(1, (now - o.movedAt) / 90) : 1;
    const e = 1 - (1 - k) * (1 - k);
    return { x: o.fromX + (o.x - o.fromX) * e, y: o.fromY + (o.y - o.fromY) * e };
  }

  function healthBar(g, cx, top, width, frac, color) {
    const h = Math.max(3, tilePx * 0.11);
    g.fillStyle = "rgba(8,12,16,0.85)";
    g.fillRect(cx - width / 2 - 1, top - 1, width + 2, h + 2);
    g.fillStyle = color;
    g.fillRect(cx - width / 2, top, width * Math.max(0, frac), h);
  }

  function drawEnemy(g, e, now) {
    const T = tilePx;
    const pos = drawPos(e, now);
    let cx = (pos.x + 0.5) * T, cy = (pos.y + 0.5) * T;
    if (e.lungeAt && now - e.lungeAt < 160) {
      const k = Math.sin(((now - e.lungeAt) / 160) * Math.PI) * 0.22 * T;
      cx += e.lungeDx * k;
      cy += e.lungeDy * k;
    }
    const bob = Math.sin(now / 220 + e.phase) * T * 0.03;
    const r = T * 0.36;
    // shadow
    g.fillStyle = "rgba(0,0,0,0.35)";
    g.beginPath();
    g.ellipse(cx, cy + r * 0.95, r * 0.9, r * 0.28, 0, 0, Math.PI * 2);
    g.fill();
    // body: a slime dome with a wavy hem
    const flash = now - e.hitAt < 120;
    const body = g.createLinearGradient(cx, cy - r, cx, cy + r);
    body.addColorStop(0, flash ? "#ffffff" : "#f07a6e");
    body.addColorStop(1, flash ? "#ffd7d2" : "#b8403c");
    g.fillStyle = body;
    g.beginPath();
    const base = cy + r * 0.85;
    g.moveTo(cx - r, base);
    g.lineTo(cx - r, cy + bob);
    g.arc(cx, cy + bob, r, Math.PI, 0);
    g.lineTo(cx + r, base);
    for (let i = 3; i >= 0; i--) {
      const x0 = cx - r + (i * 2 * r) / 4;
      g.quadraticCurveTo(x0 + r / 4, base - r * 0.22, x0, base);
    }
    g.closePath();
    g.fill();
    g.strokeStyle = "rgba(60,10,10,0.6)";
    g.lineWidth = Math.max(1, T / 24);
    g.stroke();
    // eyes that look at the player
    const p = game.player;
    const lx = Math.sign(p.x - e.x) * r * 0.1, ly = Math.sign(p.y - e.y) * r * 0.1;
    for (const side of [-1, 1]) {
      const ex = cx + side * r * 0.38, ey = cy - r * 0.1 + bob;
      g.fillStyle = "#fff";
      g.beginPath();
      g.ellipse(ex, ey, r * 0.22, r * 0.26, 0, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = "#2b0d0d";
      g.beginPath();
      g.arc(ex + lx, ey + ly, r * 0.12, 0, Math.PI * 2);
      g.fill();
      // angry brows
      g.strokeStyle = "#5a1414";
      g.lineWidth = Math.max(1, T / 18);
      g.beginPath();
      g.moveTo(ex - side * r * 0.25, ey - r * 0.38);
      g.lineTo(ex + side * r * 0.2, ey - r * 0.22);
      g.stroke();
    }
    if (e.hp < ENEMY_HP) healthBar(g, cx, cy - r - T * 0.2, T * 0.7, e.hp / ENEMY_HP, "#e05d5d");
  }

  function drawPlayer(g, now) {
    const T = tilePx;
    const p = game.player;
    const pos = drawPos(p, now);
    let cx = (pos.x + 0.5) * T, cy = (pos.y + 0.5) * T;
    if (now - fx.bumpAt < 120) {
      const [dx, dy] = DIRS[p.facing];
      const k = Math.sin(((now - fx.bumpAt) / 120) * Math.PI) * T * 0.07;
      cx += dx * k;
      cy += dy * k;
    }
    const r = T * 0.38;
    g.fillStyle = "rgba(0,0,0,0.35)";
    g.beginPath();
    g.ellipse(cx, cy + r * 0.95, r * 0.9, r * 0.28, 0, 0, Math.PI * 2);
    g.fill();
    // the spud-naut: a round suit with a visor facing where it walks
    const hurt = now - fx.hurtAt < 160;
    const suit = g.createRadialGradient(cx - r * 0.35, cy - r * 0.4, r * 0.1, cx, cy, r);
    suit.addColorStop(0, hurt ? "#ffd0d0" : "#a9d6f7");
    suit.addColorStop(1, hurt ? "#e05d5d" : "#3d8fd0");
    g.fillStyle = suit;
    g.beginPath();
    g.arc(cx, cy, r, 0, Math.PI * 2);
    g.fill();
    g.strokeStyle = "#0f1419";
    g.lineWidth = Math.max(1, T / 20);
    g.stroke();
    // antenna (it is a Sputnik after all)
    g.strokeStyle = "#c9d6e2";
    g.lineWidth = Math.max(1, T / 28);
    g.beginPath();
    g.moveTo(cx + r * 0.3, cy - r * 0.85);
    g.lineTo(cx + r * 0.55, cy - r * 1.35);
    g.stroke();
    g.fillStyle = "#ffd166";
    g.beginPath();
    g.arc(cx + r * 0.55, cy - r * 1.35, Math.max(1.5, r * 0.13), 0, Math.PI * 2);
    g.fill();
    // visor
    const [fx_, fy_] = DIRS[p.facing];
    const vx = cx + fx_ * r * 0.3, vy = cy + fy_ * r * 0.25 + r * 0.05;
    g.fillStyle = "#0f1419";
    g.beginPath();
    g.ellipse(vx, vy, r * (fy_ ? 0.62 : 0.5), r * 0.42, 0, 0, Math.PI * 2);
    g.fill();
    if (p.facing !== "up") {
      g.fillStyle = "#e6f4ff";
      for (const side of [-1, 1]) {
        if (fx_ && side === -fx_) continue; // side view: one eye
        g.beginPath();
        g.arc(vx + side * r * (fx_ ? 0.05 : 0.24) + fx_ * r * 0.12, vy, r * 0.1, 0, Math.PI * 2);
        g.fill();
      }
    }
    g.fillStyle = "rgba(255,255,255,0.35)";
    g.beginPath();
    g.ellipse(vx - r * 0.22, vy - r * 0.18, r * 0.14, r * 0.07, -0.5, 0, Math.PI * 2);
    g.fill();
    healthBar(g, cx, cy - r - T * 0.26, T * 0.8, p.hp / PLAYER_HP, p.hp > 50 ? "#5cc98b" : p.hp > 25 ? "#f0b24a" : "#e05d5d");
  }

  function drawEffects(g, now) {
    const T = tilePx;
    fx.attacks = fx.attacks.filter((a) => now - a.at < 240);
    for (const a of fx.attacks) {
      const k = (now - a.at) / 240;
      const cx = (a.x + 0.5) * T, cy = (a.y + 0.5) * T;
      g.strokeStyle = `rgba(200,235,255,${(1 - k) * 0.9})`;
      g.lineWidth = Math.max(2, T * 0.12 * (1 - k));
      g.beginPath();
      g.arc(cx, cy, T * (0.45 + 0.75 * k), 0, Math.PI * 2);
      g.stroke();
      // slashes
      g.strokeStyle = `rgba(79,163,224,${1 - k})`;
      g.lineWidth = Math.max(1.5, T * 0.07);
      for (let i = 0; i < 8; i++) {
        const ang = (i * Math.PI) / 4 + k * 1.4;
        const r0 = T * (0.6 + 0.5 * k), r1 = r0 + T * 0.3;
        g.beginPath();
        g.moveTo(cx + Math.cos(ang) * r0, cy + Math.sin(ang) * r0);
        g.lineTo(cx + Math.cos(ang + 0.25) * r1, cy + Math.sin(ang + 0.25) * r1);
        g.stroke();
      }
    }
    fx.puffs = fx.puffs.filter((f) => now - f.at < 420);
    for (const f of fx.puffs) {
      const k = (now - f.at) / 420;
      const cx = (f.x + 0.5) * T, cy = (f.y + 0.5) * T;
      for (let i = 0; i < 7; i++) {
        const ang = (i * 2 * Math.PI) / 7;
        g.fillStyle = `rgba(240,122,110,${1 - k})`;
        g.beginPath();
        g.arc(cx + Math.cos(ang) * T * 0.5 * k, cy + Math.sin(ang) * T * 0.5 * k, T * 0.12 * (1 - k) + 1, 0, Math.PI * 2);
        g.fill();
      }
    }
    fx.pops = fx.pops.filter((f) => now - f.at < 700);
    g.textAlign = "center";
    g.font = `700 ${Math.max(10, Math.round(T * 0.42))}px system-ui, sans-serif`;
    for (const f of fx.pops) {
      const k = (now - f.at) / 700;
      g.fillStyle = `rgba(255,120,110,${1 - k})`;
      g.fillText(f.text, (f.x + 0.5) * T, (f.y - 0.1 - 0.6 * k) * T);
    }
  }

  function draw(now) {
    if (!background) background = paintBackground();
    const g = ctx;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(background, 0, 0);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (game.world && game.player) {
      for (const e of game.enemies) drawEnemy(g, e, now);
      if (game.status !== "dead" || game.reason !== "killed") drawPlayer(g, now);
      drawEffects(g, now);
      if (now - fx.hurtAt < 220) {
        const [cols, rows] = gridSize();
        const W = cols * tilePx, H = rows * tilePx;
        const v = g.createRadialGradient(W / 2, H / 2, Math.min(W, H) * 0.3, W / 2, H / 2, Math.max(W, H) * 0.7);
        v.addColorStop(0, "rgba(224,93,93,0)");
        v.addColorStop(1, `rgba(224,93,93,${0.35 * (1 - (now - fx.hurtAt) / 220)})`);
        g.fillStyle = v;
        g.fillRect(0, 0, W, H);
      }
    }
  }

  // -- the loop ------------------------------------------------------------------------------
  let lastFrame = performance.now();
  function frame(now) {
    const dt = Math.min(100, Math.max(0, now - lastFrame)); // a hidden tab pauses the clock
    lastFrame = now;
    if (game.status === "playing") {
      game.timeLeft -= dt / 1000;
      if (game.timeLeft <= 0) {
        game.timeLeft = 0;
        endLevel("timeout");
      } else {
        const step = enemyStepMs(game.level ? game.level.difficulty : 1);
        game.enemyClock += dt;
        while (game.enemyClock >= step && game.status === "playing") {
          game.enemyClock -= step;
          enemiesAct(now);
        }
      }
    } else if (game.status === "loading") {
      setText("game-overlay-text", loadingText());
    }
    renderHud();
    draw(now);
    requestAnimationFrame(frame);
  }

  // -- the read-only view for people and tests -----------------------------------------------
  function snapshot() {
    const p = game.player;
    const out = {
      status: game.status,
      reason: game.reason,
      error: game.error,
      step: game.step,
      levelNumber: game.levelNumber,
      nextDifficulty: run.difficulty,
      lastLevels: run.prevLevels,
      level: game.level,
      map: game.map,
      sources: game.sources,
      player: p ? { x: p.x - 1, y: p.y - 1, hp: p.hp, maxHp: PLAYER_HP, facing: p.facing } : null,
      enemies: game.enemies.map((e) => ({ x: e.x - 1, y: e.y - 1, hp: e.hp, maxHp: ENEMY_HP })),
      timeLeft: game.world ? Math.max(0, game.timeLeft) : null,
      tilePx,
    };
    return JSON.parse(JSON.stringify(out));
  }
  Object.defineProperty(window, "jarvisGame", { get: snapshot, enumerable: true });

  // -- start ---------------------------------------------------------------------------------
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(fitCanvas, 100);
  });
  fitCanvas();
  renderOverlay();
  requestAnimationFrame(frame);
  loadNext();
})();
