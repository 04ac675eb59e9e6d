// Run a .jac program on the server: pick or upload one, run it, watch its output live.
// Every call sends the admin token (these routes refuse without one, even on loopback); the
// console is a server-sent-events stream read with fetch(), so the token stays in a header.
"use strict";

(() => {
  const { api, banner, h, fmt, TOKEN_KEY } = J;
  const BASE = "/v1/admin/jac";
  const MAX_CONSOLE_LINES = 5000;
  const $ = (id) => document.getElementById(id);

  const state = {
    programs: [],
    selected: null, // program id
    runs: [],
    shown: null, // run id in the console
    stream: null, // AbortController of the console's stream
    ok: false, // the server took our token
    jac: true, // jaclang installed there
    poll: null,
  };

  // -- errors a person can act on ------------------------------------------------------------
  function refusal(title, text, kind = "error") {
    const box = $("jac-refusal");
    if (!title) {
      box.hidden = true;
      return;
    }
    box.className = `jac-refusal ${kind}`;
    $("jac-refusal-title").textContent = title;
    $("jac-refusal-text").textContent = text;
    box.hidden = false;
  }

  function explain(err) {
    const detail = err.message.replace(/^.*? failed \(\d+\): /, "");
    if (err.status === 403) {
      state.ok = false;
      refusal(
        "Running .jac programs needs JARVIS_API_TOKEN on the server.",
        "A program run from here runs code on the server, so every part of this page needs the admin token, even on this machine. Start the server with JARVIS_API_TOKEN set (for example JARVIS_API_TOKEN=… jarvis serve), then enter that token above.",
      );
    } else if (err.status === 401) {
      state.ok = false;
      if (localStorage.getItem(TOKEN_KEY)) refusal("The admin token was not accepted.", "Enter the server's JARVIS_API_TOKEN above and press “Use token”.");
      else refusal("Enter the admin token.", "Running a program runs code on the server, so this page needs the server's JARVIS_API_TOKEN: enter it above and press “Use token”.", "info");
    } else if (err.status === 501) {
      refusal("jaclang is not installed on the server.", `Install it next to JARVIS: pip install 'jarvis-mtllm[jac]'. (${detail})`);
    } else {
      banner(err.message);
    }
    render();
  }

  const call = (path, opts = {}) => api(`${BASE}${path}`, { ...opts, admin: true });

  // -- programs ------------------------------------------------------------------------------
  function renderPrograms() {
    const list = $("jac-programs");
    if (!state.ok) {
      list.replaceChildren(h("li", { class: "muted" }, "Enter the admin token to list the programs."));
      return;
    }
    if (!state.programs.length) {
      list.replaceChildren(h("li", { class: "muted" }, "No programs yet: upload a .jac file."));
      return;
    }
    list.replaceChildren(
      ...state.programs.map((p) =>
        h(
          "li",
          {},
          h(
            "label",
            { class: `jac-program${state.selected === p.id ? " selected" : ""}`, "data-program": p.id },
            h("input", {
              type: "radio",
              name: "jac-program",
              value: p.id,
              checked: state.selected === p.id,
              onchange: () => {
                state.selected = p.id;
                render();
              },
            }),
            h("span", { class: "jac-program-name" }, p.name),
            h("span", { class: `badge ${p.kind === "example" ? "ok" : "busy"}` }, p.kind === "example" ? "example" : "uploaded"),
            h("span", { class: "muted jac-size" }, `${fmt.num(p.bytes)} B`),
          ),
        ),
      ),
    );
  }

  async function loadPrograms() {
    const d = await call("/programs");
    state.programs = d.programs;
    state.jac = d.jac_installed;
    if (!state.programs.some((p) => p.id === state.selected)) state.selected = state.programs.length ? state.programs[0].id : null;
    const l = d.limits;
    $("jac-limits").textContent = `Time limit ${fmt.dur(l.timeout_s)} · at most ${l.max_runs} at once · uploads up to ${fmt.num(Math.round(l.max_upload_bytes / 1024))}\u00a0KiB`;
    if (!state.jac) refusal("jaclang is not installed on the server.", "Install it next to JARVIS: pip install 'jarvis-mtllm[jac]'.");
  }

  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
      reader.readAsText(file);
    });
  }

  async function upload(file) {
    const note = $("jac-upload-note");
    note.textContent = `uploading ${file.name}…`;
    try {
      const source = await readFile(file);
      const saved = await call("/programs", { method: "POST", body: { name: file.name, source } });
      state.selected = saved.id;
      note.textContent = `uploaded as ${saved.name}`;
      await loadPrograms();
      render();
    } catch (err) {
      note.textContent = "";
      explain(err);
    } finally {
      $("jac-file").value = "";
    }
  }

  // -- runs ----------------------------------------------------------------------------------
  const shortId = (id) => id.slice(0, 8);

  function renderRuns() {
    const body = $("jac-runs").tBodies[0];
    if (!state.ok) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Enter the admin token to see the runs.")));
      return;
    }
    if (!state.runs.length) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No runs yet.")));
      return;
    }
    body.replaceChildren(
      ...state.runs.map((r) =>
        h(
          "tr",
          { "data-run": r.id, class: r.id === state.shown ? "jac-shown" : null },
          h("td", {}, h("code", {}, shortId(r.id))),
          h("td", {}, r.name),
          h("td", {}, h("span", { class: `badge st-${r.status}` }, r.status), r.reason ? h("div", { class: "muted jac-note" }, r.reason) : null),
          h("td", { title: new Date(r.started_at * 1000).toLocaleString() }, fmt.ago(r.started_at)),
          h("td", { class: "num" }, `${r.duration_s.toFixed(1)} s`),
          h("td", { class: "num" }, fmt.num(r.lines)),
          h("td", { class: "num" }, h("button", { class: "btn small", type: "button", onclick: () => show(r.id) }, r.id === state.shown ? "Shown" : "Show")),
        ),
      ),
    );
  }

  async function loadRuns() {
    const d = await call("/runs");
    state.runs = d.runs;
  }

  function running() {
    return state.runs.some((r) => r.status === "running");
  }

  function render() {
    renderPrograms();
    renderRuns();
    const shown = state.runs.find((r) => r.id === state.shown);
    $("jac-run").disabled = !(state.ok && state.jac && state.selected);
    $("jac-stop").disabled = !(state.ok && shown && shown.status === "running");
    $("jac-file").disabled = !state.ok;
    $("jac-file-label").classList.toggle("disabled", !state.ok);
  }

  async function refresh() {
    try {
      await Promise.all([loadPrograms(), loadRuns()]);
      state.ok = true;
      if (state.jac) refusal(null);
      banner(null);
    } catch (err) {
      explain(err);
      return;
    }
    render();
    schedule();
  }

  function schedule() {
    clearTimeout(state.poll);
    if (state.ok) state.poll = setTimeout(() => loadRuns().then(render).catch(explain).finally(schedule), running() ? 2000 : 10000);
  }

  async function run() {
    if (!state.selected) return;
    $("jac-run").disabled = true;
    try {
      const r = await call("/runs", { method: "POST", body: { program: state.selected } });
      state.runs = [r, ...state.runs.filter((x) => x.id !== r.id)];
      show(r.id);
    } catch (err) {
      explain(err);
    }
    render();
  }

  async function stop() {
    if (!state.shown) return;
    $("jac-stop").disabled = true;
    try {
      await call(`/runs/${state.shown}/stop`, { method: "POST" });
    } catch (err) {
      explain(err);
    }
    await loadRuns().catch(explain);
    render();
  }

  // -- the console ---------------------------------------------------------------------------
  function status(run) {
    const badge = $("jac-status");
    badge.hidden = !run;
    if (run) {
      badge.className = `badge st-${run.status}`;
      badge.textContent = run.status;
    }
  }

  function print(text, cls) {
    const pre = $("jac-console");
    const stick = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    pre.append(cls ? h("span", { class: cls }, `${text}\n`) : document.createTextNode(`${text}\n`));
    while (pre.childNodes.length > MAX_CONSOLE_LINES) pre.firstChild.remove();
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  function finish(info) {
    const exit = $("jac-exit");
    exit.hidden = false;
    exit.className = `jac-exit ${info.status === "succeeded" ? "ok" : info.status === "failed" ? "bad" : "warn"}`;
    exit.textContent = info.reason && !info.reason.startsWith(info.message) ? `${info.message} — ${info.reason}` : info.message;
    const r = state.runs.find((x) => x.id === state.shown);
    if (r) Object.assign(r, { status: info.status, returncode: info.returncode, reason: info.reason });
    status({ status: info.status });
    loadRuns().then(render).catch(explain);
  }

  function dispatch(event, data) {
    if (event === "run") {
      const r = JSON.parse(data);
      $("jac-console-title").textContent = `${r.name} · run ${shortId(r.id)}`;
      status(r);
    } else if (event === "exit") {
      finish(JSON.parse(data));
    } else {
      print(data);
    }
  }

  // Server-sent events over fetch(): EventSource cannot send the Authorization header.
  async function stream(runId, signal) {
    const token = localStorage.getItem(TOKEN_KEY) || "";
    const response = await fetch(`${BASE}/runs/${runId}/stream`, {
      headers: { Accept: "text/event-stream", Authorization: `Bearer ${token}` },
      signal,
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).error.message;
      } catch (_) {
        /* keep the status text */
      }
      throw new J.ApiError(`GET ${BASE}/runs/${shortId(runId)}/stream failed (${response.status}): ${detail}`, response.status);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      // SSE ends a line at \r\n, \r or \n; a \r at the very end may be half of a \r\n
      buffer += value;
      const tail = buffer.endsWith("\r") ? "\r" : "";
      buffer = buffer.slice(0, buffer.length - tail.length).replace(/\r\n?/g, "\n") + tail;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
        if (data.length) dispatch(event, data.join("\n"));
      }
    }
  }

  function show(runId) {
    if (state.stream) state.stream.abort();
    state.shown = runId;
    $("jac-console").replaceChildren();
    $("jac-exit").hidden = true;
    $("jac-exit").textContent = "";
    const controller = new AbortController();
    state.stream = controller;
    render();
    stream(runId, controller.signal).catch((err) => {
      if (err.name === "AbortError") return;
      if (err.status) explain(err);
      else print(`(the stream broke: ${err.message})`, "jac-warn-line");
    });
  }

  // -- wiring --------------------------------------------------------------------------------
  function init() {
    const live = $("live");
    if (live) live.hidden = true; // this page streams its own console
    const token = $("jac-token");
    token.value = localStorage.getItem(TOKEN_KEY) || "";
    $("jac-auth").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (token.value) localStorage.setItem(TOKEN_KEY, token.value);
      else localStorage.removeItem(TOKEN_KEY);
      refresh();
    });
    $("jac-file").addEventListener("change", (ev) => {
      const file = ev.target.files[0];
      if (file) upload(file);
    });
    $("jac-run").addEventListener("click", run);
    $("jac-stop").addEventListener("click", stop);
    render();
    refresh();
  }

  init();
})();
