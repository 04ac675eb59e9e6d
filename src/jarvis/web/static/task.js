// One task: dataset growth, training runs with live loss curves, versions with their gate
// tables and promote/rollback, and the recent calls (maps drawn as tile grids).
"use strict";

(() => {
  const { api, banner, live, h, fmt, lineChart, tileCanvas, TOKEN_KEY } = J;
  const task = document.getElementById("main").dataset.task;
  const path = `/api/tasks/${encodeURIComponent(task)}`;
  let inFlight = false;
  let again = false;
  let lastCall = null;

  const card = (label, value, note) =>
    h("div", { class: "card" }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value), note ? h("div", { class: "card-note" }, note) : null);

  function renderCards(t) {
    document.getElementById("cards").replaceChildren(
      card("calls", fmt.num(t.calls), `${fmt.num(t.teacher_calls)} teacher · ${fmt.num(t.student_calls)} student`),
      card("student share", fmt.pct(t.student_share), `fallback rate ${fmt.pct(t.fallback_rate)}`),
      card("examples", `${fmt.num(t.examples_train)} / ${fmt.num(t.examples_heldout)}`, `train / held-out · threshold ${fmt.num(t.threshold)}`),
      card("active version", t.active_version || "none", t.active_version ? "served by the student" : "the teacher answers"),
      card("p50 latency", `${fmt.ms(t.latency_p50_ms.student)} / ${fmt.ms(t.latency_p50_ms.teacher)}`, "student / teacher"),
      card("teacher calls saved", fmt.num(t.teacher_calls_saved), `${fmt.usd(t.cost_saved_usd)} saved`),
      card("agreement with the teacher", `${fmt.pct(t.held_out_agreement)} / ${fmt.pct(t.live_agreement)}`, "active version: held-out / live (shadow)"),
      card("escalations", `${fmt.num(t.escalations)} (${fmt.pct(t.escalation_rate)})`, t.confidence_threshold != null ? `below confidence ${t.confidence_threshold.toFixed(3)} · coverage ${fmt.pct(t.coverage)}` : "no calibrated threshold"),
      card("feedback", `${fmt.num(t.feedback.total)} · ${fmt.num(t.feedback.negative)} negative`, t.feedback.active ? `on ${t.active_version}: ${fmt.num(t.feedback.active.feedback)} (${fmt.num(t.feedback.active.negative)} negative)` : "POST /v1/calls/{id}/feedback"),
    );
  }

  function renderCharts(d) {
    const growth = [
      { name: "train", color: "#4fa3e0", points: d.growth.map((p) => [p.t, p.train]) },
      { name: "held-out", color: "#9b7fe0", points: d.growth.map((p) => [p.t, p.heldout]) },
      { name: "threshold", color: "#5a6570", points: d.growth.length ? [[d.growth[0].t, d.task.threshold], [d.growth[d.growth.length - 1].t, d.task.threshold]] : [] },
    ];
    document.getElementById("growth").replaceChildren(
      lineChart(growth, { yFormat: (v) => Math.round(v), xFormat: fmt.time, empty: "no examples yet", yMax: Math.max(d.task.threshold, d.task.examples_train) * 1.08 }),
    );
    const share = [
      { name: "student share", color: "#4fa3e0", points: d.series.map((p) => [p.t, p.calls ? p.student / p.calls : 0]) },
      { name: "fallbacks", color: "#e0a84f", points: d.series.map((p) => [p.t, p.calls ? p.fallbacks / p.calls : 0]) },
    ];
    document.getElementById("share").replaceChildren(
      lineChart(share, { yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%`, xFormat: fmt.time, empty: "no calls yet" }),
    );
  }

  const PALETTE = ["#4fa3e0", "#9b7fe0", "#5cb85c", "#e0a84f", "#e06c75"];

  function renderShadow(shadow, rate) {
    const box = document.getElementById("shadow");
    if (!shadow.points.length) {
      box.replaceChildren(h("p", { class: "muted" }, `No shadow checks yet. Set JARVIS_SHADOW_RATE (e.g. 0.05) to send a sample of the student's answers to the teacher too.`));
      return;
    }
    const versions = Object.keys(shadow.by_version);
    const series = versions.map((v, i) => ({
      name: `${v} (mean ${fmt.pct(shadow.by_version[v].mean)}, n=${shadow.by_version[v].n})`,
      color: PALETTE[i % PALETTE.length],
      points: shadow.points.filter((p) => p.version === v).map((p) => [p.t, p.agreement]),
    }));
    box.replaceChildren(
      lineChart(series, { yMax: 1, legend: true, yFormat: (v) => `${Math.round(v * 100)}%`, xFormat: fmt.time }),
      h("p", { class: "muted" }, `${shadow.metric === "fields" ? "Share of answer fields equal to the teacher's" : "chrF against the teacher's answer"}, per call checked.`),
    );
  }

  function renderRuns(runs) {
    const box = document.getElementById("runs");
    if (!runs.length) {
      box.replaceChildren(h("p", { class: "muted" }, "No training runs yet. One starts when the task reaches its threshold, or with “Train now”."));
      return;
    }
    box.replaceChildren(
      ...runs.map((r) => {
        const p = r.progress || {};
        const losses = p.losses || [];
        const total = p.total_steps || 0;
        const bar = h("div", { class: "bar" }, h("div", { class: "bar-fill" }), h("span", { class: "bar-label" }, total ? `step ${p.step || 0} / ${total}` : p.phase || r.status));
        bar.firstChild.style.width = `${total ? Math.round((100 * (p.step || 0)) / total) : r.status === "succeeded" ? 100 : 0}%`;
        const facts = [
          p.phase && r.status === "running" ? `phase: ${p.phase}` : null,
          p.loss !== undefined ? `loss ${p.loss.toFixed(4)}` : null,
          p.examples_per_s ? `${p.examples_per_s.toFixed(2)} ex/s` : null,
          r.status === "running" && p.eta_s !== undefined ? `ETA ${fmt.dur(p.eta_s)}` : null,
          r.version ? `→ ${r.version}` : null,
          p.reason ? p.reason : null,
        ].filter(Boolean);
        return h(
          "div",
          { class: `run run-${r.status}`, "data-run": r.id },
          h("div", { class: "run-head" }, h("strong", {}, `run #${r.id}`), h("span", { class: `badge st-${r.status}` }, r.status), h("span", { class: "muted" }, `${r.reason || ""} · ${fmt.ago(r.created_at)}`)),
          bar,
          h("div", { class: "run-facts" }, facts.join(" · ")),
          r.error ? h("div", { class: "error-text" }, r.error) : null,
          losses.length ? lineChart([{ name: "training loss", color: "#e06c75", points: losses.map((l, i) => [i + 1, l]) }], { height: 120, legend: true, xFormat: (s) => `step ${s}` }) : null,
        );
      }),
    );
  }

  function gateTable(v) {
    const g = v.gate || {};
    const rows = [
      ["format pass", "format_pass", fmt.pct],
      ["semantic pass", "semantic_pass", fmt.pct],
      ["agreement with the teacher", "agreement", fmt.pct],
      ["confidence threshold", "threshold", (x) => (x == null ? "–" : x.toFixed(3))],
      ["coverage at the threshold", "coverage", fmt.pct],
      ["field agreement", "field_agreement", fmt.pct],
      ["exact match", "exact_match", fmt.pct],
      ["chrF vs teacher", "text_similarity", (x) => (x == null ? "–" : x.toFixed(3))],
      ["examples", "examples", fmt.num],
      ["tokens out (mean)", "tokens_out_mean", (x) => (x == null ? "–" : x.toFixed(1))],
    ];
    const cand = g.candidate || {};
    const act = g.active;
    return h(
      "table",
      { class: "gate" },
      h("thead", {}, h("tr", {}, h("th", {}, "held-out gate"), h("th", { class: "num" }, v.name), act ? h("th", { class: "num" }, `${v.parent} (was active)`) : null)),
      h("tbody", {}, ...rows.map(([label, key, f]) => h("tr", {}, h("td", {}, label), h("td", { class: "num" }, f(cand[key])), act ? h("td", { class: "num" }, f(act[key])) : null))),
    );
  }

  // Agreement of the answers the student keeps vs the share it keeps (coverage), for every
  // confidence threshold: the calibration behind the escalations.
  function curveChart(v) {
    const curve = ((v.gate || {}).candidate || {}).curve || [];
    if (!curve.length) return null;
    const low = Math.min(...curve.map((c) => c[2]));
    return h(
      "figure",
      { class: "curve" },
      lineChart([{ name: "agreement vs coverage", color: "#5cb85c", points: curve.map((c) => [c[1], c[2]]) }], {
        height: 140,
        legend: true,
        yMin: Math.max(0, Math.floor(low * 10) / 10 - 0.05),
        yMax: 1,
        yFormat: (x) => `${Math.round(x * 100)}%`,
        xFormat: (x) => `${Math.round(x * 100)}% kept`,
      }),
    );
  }

  function renderVersions(versions, admin) {
    const box = document.getElementById("versions");
    if (!versions.length) {
      box.replaceChildren(h("p", { class: "muted" }, "No versions yet."));
      return;
    }
    box.replaceChildren(
      ...versions.map((v) => {
        const verdict = (v.gate && v.gate.verdict) || {};
        const t = v.train || {};
        return h(
          "div",
          { class: `version ${v.active ? "is-active" : ""}`, "data-version": v.name },
          h(
            "div",
            { class: "version-head" },
            h("strong", {}, v.name),
            h("span", { class: `badge st-${v.active ? "active" : v.status}` }, v.active ? "active" : v.status),
            h("span", { class: "muted" }, `${fmt.ago(v.created_at)} · ${fmt.num(t.examples)} examples · ${fmt.num(t.steps)} steps · loss ${t.first_loss != null ? t.first_loss.toFixed(3) : "–"} → ${t.final_loss != null ? t.final_loss.toFixed(3) : "–"} · ${fmt.dur(t.duration_s)}`),
            v.active || v.status === "rejected" ? null : h("button", { class: "btn small", "data-promote": v.name, onclick: () => admin(`promote`, { version: v.name }) }, "Promote"),
          ),
          h("div", { class: `verdict ${verdict.promote ? "pass" : "fail"}` }, verdict.reason || "no gate verdict"),
          h("div", { class: "gate-box" }, gateTable(v), curveChart(v)),
        );
      }),
    );
  }

  function brief(value, limit = 140) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text && text.length > limit ? `${text.slice(0, limit)}…` : text;
  }

  function renderCalls(calls) {
    const body = document.querySelector("#calls tbody");
    if (!calls.length) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No calls yet.")));
      return;
    }
    body.replaceChildren(
      ...calls.map((c) => {
        const source = c.source === "student" ? `student ${c.version || ""}` : c.fallback ? "teacher (fallback)" : "teacher";
        const verdict = c.valid ? h("span", { class: "badge ok" }, "valid") : h("span", { class: "badge bad", title: c.reason || "" }, "invalid");
        const output = h("td", { class: "io" }, c.tiles ? tileCanvas(c.tiles, 6) : null, h("code", {}, brief(c.output ?? c.error ?? "")));
        return h(
          "tr",
          { "data-call": c.id },
          h("td", {}, c.id),
          h("td", { class: "muted" }, fmt.time(c.created_at)),
          h("td", {}, h("span", { class: `src src-${c.fallback ? "fallback" : c.source}` }, source)),
          h("td", {}, verdict, c.reason ? h("div", { class: "reason" }, c.reason) : null, c.attempts > 1 ? h("div", { class: "muted" }, `${c.attempts} attempts`) : null),
          h("td", { class: "num" }, fmt.ms(c.latency_ms)),
          h("td", { class: "io" }, h("code", {}, brief(c.input))),
          output,
        );
      }),
    );
  }

  async function admin(action, body) {
    const token = document.getElementById("token");
    if (!token.hidden && token.value) localStorage.setItem(TOKEN_KEY, token.value);
    try {
      const result = await api(`/v1/admin/tasks/${encodeURIComponent(task)}/${action}`, { method: "POST", body: body || {}, admin: true });
      const what = action === "train" ? `training run #${result.run_id} queued (${result.train_examples} examples)` : `active version: ${result.active_version || "none (teacher)"}`;
      banner(`${action}: ${what}`, "info");
      refresh(true);
    } catch (err) {
      banner(`${action} failed: ${err.message}`);
    }
  }

  async function refresh(calls = true) {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      const d = await api(path);
      document.getElementById("instructions").textContent = d.instructions;
      const token = document.getElementById("token");
      token.hidden = !d.admin.token_required;
      if (!token.hidden && !token.value) token.value = localStorage.getItem(TOKEN_KEY) || "";
      renderCards(d.task);
      renderCharts(d);
      renderShadow(d.shadow);
      renderRuns(d.runs);
      renderVersions(d.versions, admin);
      document.getElementById("rollback").disabled = !d.task.active_version;
      if (calls) renderCalls((await api(`${path}/calls?limit=25`)).calls);
    } catch (err) {
      banner(`Could not load task ${task}: ${err.message}`);
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        refresh(true);
      }
    }
  }

  document.getElementById("train-now").addEventListener("click", () => admin("train"));
  document.getElementById("rollback").addEventListener("click", () => admin("rollback"));
  refresh(true);
  live((change) => {
    const newCalls = change.call !== lastCall;
    lastCall = change.call;
    refresh(newCalls);
  });
})();
