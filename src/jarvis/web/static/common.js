// Shared by every page: API calls with readable errors, the live stream, small SVG charts,
// formatting, and drawing a map's tile grid. No framework, no build step, no CDN.
"use strict";

const J = (() => {
  const TOKEN_KEY = "jarvis.apiToken";

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // fetch JSON; any failure becomes an ApiError whose message a person can read.
  async function api(path, { method = "GET", body, admin = false, signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = localStorage.getItem(TOKEN_KEY);
    if (admin && token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(`cannot reach the JARVIS server (${err.message})`, 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      /* not JSON: described below */
    }
    if (!response.ok) {
      const detail = data && data.error ? data.error.message : response.statusText;
      throw new ApiError(`${method} ${path} failed (${response.status}): ${detail}`, response.status);
    }
    if (data === null) throw new ApiError(`${method} ${path}: the answer is not JSON`, response.status);
    return data;
  }

  function banner(message, kind = "error") {
    const el = document.getElementById("banner");
    if (!el) return;
    if (!message) {
      el.hidden = true;
      el.textContent = "";
      return;
    }
    el.className = `banner ${kind}`;
    el.textContent = message;
    el.hidden = false;
  }

  // The live stream: calls onChange(fingerprint) whenever the store changed.
  function live(onChange) {
    const badge = document.getElementById("live");
    const source = new EventSource("/api/stream");
    source.addEventListener("change", (ev) => {
      if (badge) {
        badge.textContent = "live";
        badge.className = "live on";
      }
      onChange(JSON.parse(ev.data));
    });
    source.onerror = () => {
      if (badge) {
        badge.textContent = "reconnecting…";
        badge.className = "live off";
      }
    };
    return source;
  }

  // -- DOM helpers ---------------------------------------------------------------------------
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const fmt = {
    pct: (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(x >= 0.995 || x === 0 ? 0 : 1)}%`),
    ms: (x) => (x === null || x === undefined ? "–" : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`),
    num: (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US")),
    usd: (x) => (x === null || x === undefined ? "–" : x < 0.01 && x > 0 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`),
    time: (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "–"),
    ago: (t) => {
      if (!t) return "–";
      const s = Math.max(0, Date.now() / 1000 - t);
      if (s < 60) return `${Math.round(s)} s ago`;
      if (s < 3600) return `${Math.round(s / 60)} min ago`;
      return `${(s / 3600).toFixed(1)} h ago`;
    },
    dur: (s) => (s === null || s === undefined ? "–" : s >= 120 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`),
  };

  // -- charts (SVG) --------------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs = {}) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  }

  // lineChart(series=[{name, color, points:[[x,y],...]}], {height, yMax, yFormat, xFormat})
  function lineChart(series, opts = {}) {
    const W = opts.width || 560, H = opts.height || 160, P = { l: 42, r: 10, t: 10, b: 22 };
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
    const all = series.flatMap((s) => s.points);
    if (!all.length) {
      const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" });
      t.textContent = opts.empty || "no data yet";
      root.append(t);
      return root;
    }
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
    const y0 = opts.yMin ?? 0, y1 = opts.yMax ?? Math.max(1e-9, ...ys) * 1.05;
    const X = (x) => P.l + ((x - x0) / (x1 - x0)) * (W - P.l - P.r);
    const Y = (y) => H - P.b - ((y - y0) / (y1 - y0 || 1)) * (H - P.t - P.b);
    for (let i = 0; i <= 4; i++) {
      const v = y0 + ((y1 - y0) * i) / 4;
      root.append(svg("line", { x1: P.l, x2: W - P.r, y1: Y(v), y2: Y(v), class: "grid" }));
      const t = svg("text", { x: P.l - 6, y: Y(v) + 4, "text-anchor": "end", class: "axis" });
      t.textContent = (opts.yFormat || ((n) => +n.toFixed(2)))(v);
      root.append(t);
    }
    for (const [i, x] of [x0, x1].entries()) {
      const t = svg("text", { x: X(x), y: H - 6, "text-anchor": i ? "end" : "start", class: "axis" });
      t.textContent = (opts.xFormat || ((n) => n))(x);
      root.append(t);
    }
    for (const s of series) {
      if (!s.points.length) continue;
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
      root.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, class: "line" }));
    }
    if (series.length > 1 || opts.legend) {
      let lx = P.l + 6;
      for (const s of series) {
        root.append(svg("rect", { x: lx, y: P.t, width: 10, height: 3, fill: s.color }));
        const t = svg("text", { x: lx + 14, y: P.t + 5, class: "legend" });
        t.textContent = s.name;
        root.append(t);
        lx += 22 + s.name.length * 6.5;
      }
    }
    return root;
  }

  // -- tiles ---------------------------------------------------------------------------------
  const TILE_COLORS = { ".": "#2b3a2e", B: "#7a6a58", E: "#d9534f", P: "#4fa3e0" };
  function tileCanvas(rows, size = 8) {
    const c = document.createElement("canvas");
    c.width = rows[0].length * size;
    c.height = rows.length * size;
    c.className = "tiles";
    const g = c.getContext("2d");
    rows.forEach((row, y) =>
      [...row].forEach((ch, x) => {
        g.fillStyle = TILE_COLORS[ch] || "#000";
        g.fillRect(x * size, y * size, size, size);
      }),
    );
    return c;
  }

  return { api, ApiError, banner, live, h, fmt, lineChart, tileCanvas, TOKEN_KEY };
})();
