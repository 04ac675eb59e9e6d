// Overview: one row per task, totals, share/fallback charts, events; refreshed live.
"use strict";

(() => {
  const { api, banner, live, h, fmt, lineChart } = J;
  let inFlight = false;
  let again = false;

  function card(label, value, note) {
    return h("div", { class: "card" }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value), note ? h("div", { class: "card-note" }, note) : null);
  }

  function progressBar(value, label) {
    const bar = h("div", { class: "bar" }, h("div", { class: "bar-fill" }), h("span", { class: "bar-label" }, label));
    bar.firstChild.style.width = `${Math.round(100 * Math.min(1, value))}%`;
    return bar;
  }

  function sourceBadge(row) {
    if (row.run) {
      const p = row.run.progress || {};
      const text = p.total_steps ? `training ${p.step || 0}/${p.total_steps}` : `training: ${p.phase || row.run.status}`;
      return h("span", { class: "badge busy" }, text);
    }
    return row.active_version ? h("span", { class: "badge ok" }, row.active_version) : h("span", { class: "badge" }, "teacher only");
  }

  function taskRow(t) {
    const threshold = `${fmt.num(t.examples_train)} / ${fmt.num(t.examples_heldout)} → ${fmt.num(t.threshold)}`;
    return h(
      "tr",
      { "data-task": t.name },
      h("td", {}, h("a", { href: `/tasks/${encodeURIComponent(t.name)}`, class: "task-link" }, t.name), t.declared ? null : h("span", { class: "badge warn" }, "not loaded")),
      h("td", { class: "num" }, fmt.num(t.calls)),
      h("td", { class: "num share" }, fmt.pct(t.student_share)),
      h("td", { class: "num" }, t.fallbacks ? `${fmt.num(t.fallbacks)} (${fmt.pct(t.fallback_rate)})` : "0"),
      h("td", { class: "num escalated" }, t.escalations ? `${fmt.num(t.escalations)} (${fmt.pct(t.escalation_rate)})` : "0"),
      h("td", { class: "num agreement" }, `${fmt.pct(t.held_out_agreement)} / ${fmt.pct(t.live_agreement)}`),
      h("td", {}, progressBar(t.threshold_progress, threshold)),
      h("td", {}, sourceBadge(t)),
      h("td", { class: "num" }, fmt.ms(t.latency_p50_ms.student)),
      h("td", { class: "num" }, fmt.ms(t.latency_p50_ms.teacher)),
      h("td", { class: "num" }, fmt.num(t.teacher_calls_saved)),
      h("td", { class: "num" }, fmt.usd(t.cost_saved_usd)),
    );
  }

  function shareChart(t) {
    const share = t.series.map((p) => [p.t, p.calls ? p.student / p.calls : 0]);
    const fallbacks = t.series.map((p) => [p.t, p.calls ? p.fallbacks / p.calls : 0]);
    return h(
      "figure",
      { class: "chart-box" },
      h("figcaption", {}, t.name),
      lineChart(
        [
          { name: "student share", color: "#4fa3e0", points: share },
          { name: "fallbacks", color: "#e0a84f", points: fallbacks },
        ],
        { yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%`, xFormat: fmt.time, empty: "no calls yet", width: 380, height: 170 },
      ),
    );
  }

  function render(data) {
    document.getElementById("teacher").textContent =
      `Teacher: ${data.teacher}. Student base: ${data.base_model}. Cost saved at $${data.price_per_mtok.in} / $${data.price_per_mtok.out} per million prompt / answer tokens.`;
    const tot = data.totals;
    document.getElementById("totals").replaceChildren(
      card("calls", fmt.num(tot.calls)),
      card("student share", fmt.pct(tot.calls ? tot.student_calls / tot.calls : null)),
      card("teacher calls saved", fmt.num(tot.teacher_calls_saved), `${fmt.num(tot.fallbacks)} fallbacks`),
      card("cost saved", fmt.usd(tot.cost_saved_usd)),
    );
    const body = document.querySelector("#tasks tbody");
    body.replaceChildren(...(data.tasks.length ? data.tasks.map(taskRow) : [h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No tasks yet: make a call, or run `jarvis demo`."))]));
    document.getElementById("charts").replaceChildren(...data.tasks.map(shareChart));
    const events = document.getElementById("events");
    events.replaceChildren(
      ...(data.events.length
        ? data.events.map((e) => h("li", {}, h("span", { class: `ev ev-${e.kind}` }, e.kind), " ", e.message, h("span", { class: "muted" }, ` · ${fmt.ago(e.created_at)}`)))
        : [h("li", { class: "muted" }, "nothing has happened yet")]),
    );
  }

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      render(await api("/api/overview"));
      banner(null);
    } catch (err) {
      banner(`Could not load the overview: ${err.message}`);
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  refresh();
  live(refresh);
})();
