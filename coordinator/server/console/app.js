// The regshift console: three pages (rollouts, one rollout, nodes) drawn
// from one server-sent-events stream (GET /v1/stream). The page reads the
// whole state once when the stream opens, then only what changed; it never
// polls. Requests are signed here (sign.js) and relayed by the coordinator.
import { importSigningKey, keyID, signRequest } from "./sign.js";

// canSign says whether this browser can sign here: WebCrypto needs a
// secure context (https, or http on 127.0.0.1 / localhost).
const canSign = () => !!(window.isSecureContext && window.crypto && crypto.subtle);

{
  const $ = (sel, root = document) => root.querySelector(sel);
  const main = $("#main");
  const tip = $("#tip");
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const STATES = ["none", "installed", "active", "switched-back", "uninstalled", "failed"];

  const st = {
    status: null, // this replica: leader or standby, and the leader it knows
    rollouts: new Map(), // id -> summary
    connected: false,
    es: null,
    following: null, // the rollout id the stream follows
    ro: null, // the followed rollout: {head, nodes (rows), series, grid}
    key: null, // {id, key (CryptoKey, non-extractable)}
    route: null,
    // What the page costs, for the speed figures (docs/performance.md):
    // time to first render, and the JavaScript time of each event applied.
    metrics: { events: 0, applyMs: 0, maxApplyMs: 0, rows: 0, snapshotMs: 0, firstRenderAt: 0, longTasks: 0, maxLongTaskMs: 0 },
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) { st.metrics.longTasks++; st.metrics.maxLongTaskMs = Math.max(st.metrics.maxLongTaskMs, e.duration); }
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { /* no long task timing here */ }
  window.regshiftConsole = st; // for tests and the curious: read-only use

  // ---- the stream -------------------------------------------------------

  function connect(rollout) {
    if (st.es && st.following === rollout) return;
    if (st.es) st.es.close();
    st.following = rollout;
    st.ro = null;
    const es = new EventSource("/v1/stream" + (rollout ? "?rollout=" + encodeURIComponent(rollout) : ""));
    st.es = es;
    const on = (ev, fn) => es.addEventListener(ev, (e) => {
      if (st.es !== es) return;
      const t0 = performance.now();
      fn(JSON.parse(e.data));
      const dt = performance.now() - t0;
      st.metrics.events++;
      st.metrics.applyMs += dt;
      st.metrics.maxApplyMs = Math.max(st.metrics.maxApplyMs, dt);
    });
    es.onopen = () => { st.connected = true; drawStatus(); };
    es.onerror = () => { st.connected = false; drawStatus(); };
    on("status", (s) => { st.status = s; drawStatus(); if (st.route.page === "rollouts") later(drawList); });
    on("rollouts", (list) => {
      st.rollouts = new Map(list.map((s) => [s.id, s]));
      if (st.route.page === "rollouts") drawList();
      if (st.route.page === "nodes") later(loadNodes);
    });
    on("summary", (s) => {
      st.rollouts.set(s.id, s);
      if (st.route.page === "rollouts") later(drawList);
      if (st.route.page === "nodes") later(loadNodes, 1000);
    });
    on("missing", (e) => { if (st.route.page === "rollout") main.innerHTML = `<h1>${esc(st.route.id)}</h1><p class="bad">${esc(e.error)}</p>` + standbyHint(); });
    on("snapshot", (snap) => {
      const t0 = performance.now();
      st.ro = { head: snap.head, nodes: snap.nodes, series: snap.series || [], grid: null };
      if (st.route.page === "rollout") {
        drawRollout();
        void document.body.offsetHeight; // the layout too
        if (!st.metrics.firstRenderAt) st.metrics.firstRenderAt = performance.now();
      }
      st.metrics.snapshotMs = performance.now() - t0;
    });
    on("head", (h) => { if (st.ro) { st.ro.head = h; later(drawHead); } });
    on("nodes", (rows) => {
      if (!st.ro) return;
      st.metrics.rows += rows.length;
      for (const row of rows) {
        const i = row[0];
        st.ro.nodes[i] = row.slice(1);
        if (st.ro.grid) drawCell(i);
      }
    });
    on("point", (p) => {
      if (!st.ro) return;
      const s = st.ro.series;
      if (!s.length || s[s.length - 1].t !== p.t) s.push(p);
      later(drawChart);
    });
  }

  // later runs fn once on the next frame (or after ms), however often it
  // is asked to before then.
  const pending = new Map();
  function later(fn, ms) {
    if (pending.has(fn)) return;
    pending.set(fn, true);
    const run = () => { pending.delete(fn); fn(); };
    if (ms) setTimeout(run, ms); else requestAnimationFrame(run);
  }

  // ---- status and routing -----------------------------------------------

  function drawStatus() {
    const el = $("#replica"), banner = $("#banner");
    const s = st.status;
    el.classList.toggle("down", !st.connected);
    if (!st.connected) {
      el.textContent = (s ? "replica " + s.replica + " · " : "") + "connection lost, reconnecting…";
      return;
    }
    if (!s) { el.textContent = "connected"; return; }
    el.textContent = s.leader ? `replica ${s.replica} · leader (epoch ${s.epoch})` : `replica ${s.replica} · standby`;
    if (!s.leader) {
      banner.hidden = false;
      banner.className = "banner";
      banner.innerHTML = `This replica (<b>${esc(s.replica)}</b>) is a <b>standby</b>: it holds no rollouts. ` +
        (s.leader_replica ? `The leader is <b id="leader-name">${esc(s.leader_replica)}</b> (epoch ${s.leader_epoch}, since ${esc(clock(s.leader_since))}); open its console.`
          : "No leader is known yet.");
    } else {
      banner.hidden = true;
    }
  }

  function standbyHint() {
    const s = st.status;
    return s && !s.leader ? `<p class="muted">This replica is a standby${s.leader_replica ? "; the leader is " + esc(s.leader_replica) : ""}.</p>` : "";
  }

  function parseRoute() {
    const h = location.hash.replace(/^#/, "") || "/";
    const [path, query] = h.split("?");
    const params = new URLSearchParams(query || "");
    const m = /^\/rollouts\/(.+)$/.exec(path);
    if (m) return { page: "rollout", id: decodeURIComponent(m[1]) };
    if (path === "/nodes") return { page: "nodes", params };
    return { page: "rollouts" };
  }

  function route() {
    st.route = parseRoute();
    $("#nav-rollouts").classList.toggle("on", st.route.page !== "nodes");
    $("#nav-nodes").classList.toggle("on", st.route.page === "nodes");
    tip.hidden = true;
    if (st.route.page === "rollout") {
      main.innerHTML = `<h1>${esc(st.route.id)}</h1><p class="muted">Loading…</p>`;
      connect(st.route.id);
      if (st.ro) drawRollout();
    } else {
      connect("");
      if (st.route.page === "nodes") drawNodesPage(); else drawList();
    }
  }

  // ---- helpers ----------------------------------------------------------

  function clock(t) {
    if (!t) return "–";
    const d = new Date(t);
    return isNaN(d) ? "–" : d.toISOString().slice(11, 19);
  }
  function age(t) {
    if (!t) return "–";
    const s = Math.max(0, (Date.now() - new Date(t)) / 1000);
    if (s < 90) return Math.round(s) + "s";
    if (s < 5400) return Math.round(s / 60) + "m";
    if (s < 172800) return Math.round(s / 3600) + "h";
    return Math.round(s / 86400) + "d";
  }
  function bar(counts, total) {
    if (!total) return '<div class="bar"></div>';
    return '<div class="bar">' + STATES.map((k) => counts[k] ? `<span class="s-${k}" style="width:${(100 * counts[k]) / total}%" title="${k}: ${counts[k]}"></span>` : "").join("") + "</div>";
  }
  function total(counts) { return Object.values(counts || {}).reduce((a, b) => a + b, 0); }
  function flags(s) {
    return (s.paused ? '<span class="flag">paused</span>' : "") + (s.held ? '<span class="flag">held at gate</span>' : "") +
      (s.quarantined ? '<span class="flag" title="' + esc(s.quarantined) + '">quarantined</span>' : "");
  }
  function phase(p) { return `<span class="badge ph-${esc(p)}">${esc(p)}</span>`; }

  // ---- rollouts page ----------------------------------------------------

  function drawList() {
    if (st.route.page !== "rollouts") return;
    const list = [...st.rollouts.values()];
    const rows = list.map((s) => {
      const n = total(s.nodes);
      return `<tr data-id="${esc(s.id)}"><td><a href="#/rollouts/${encodeURIComponent(s.id)}">${esc(s.id)}</a></td><td>${phase(s.phase)}${flags(s)}</td>` +
        `<td class="num">${s.wave} / ${s.waves}</td><td>${bar(s.nodes, n)}<span class="muted">${n} nodes${s.nodes && s.nodes.active ? ", " + s.nodes.active + " active" : ""}</span></td>` +
        `<td class="num">${age(s.created)}</td><td class="detail">${s.last_decision ? esc(s.last_decision.decision) + (s.last_decision.check ? " (" + esc(s.last_decision.check) + ")" : "") + " " + esc(clock(s.last_decision.at)) : ""}</td></tr>`;
    }).join("");
    main.innerHTML = `<h1>Rollouts</h1>` + (list.length ? `<table id="rollouts"><thead><tr><th>rollout</th><th>phase</th><th>wave</th><th>progress</th><th>age</th><th>last decision</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="muted" id="rollouts-empty">No rollouts on this replica.</p>` + standbyHint()) + legend();
  }

  function legend() {
    return '<div class="legend">' + STATES.map((k) => `<i class="s-${k}"></i>${k}`).join("") +
      ' <i class="s-active h-critical"></i>critical <i class="s-active h-warning"></i>warning <i class="s-installed p"></i>command pending</div>';
  }

  // ---- one rollout ------------------------------------------------------

  // The waves' grids are canvases: one square a node, drawn again alone
  // when its row changes, so an update of thousands of nodes costs no
  // restyle of thousands of elements. Hovering a square names its node.
  const COLORS = {};
  function color(name) {
    if (!COLORS[name]) COLORS[name] = getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim() || "#999";
    return COLORS[name];
  }

  function drawCell(i) {
    const ro = st.ro, g = ro.grid, at = g.at[i];
    if (!at) return;
    const n = ro.nodes[i], c = g.ctx[at.w], p = g.pitch, s = g.size;
    const x = (at.k % g.cols) * p, y = Math.floor(at.k / g.cols) * p;
    c.clearRect(x, y, p, p);
    c.fillStyle = color(n[6] ? "failed" : n[3]);
    c.fillRect(x, y, s, s);
    const ring = n[4] === "critical" ? color("crit") : n[4] === "warning" ? color("warn") : n[5] ? "#1d2330" : "";
    if (ring) {
      const lw = s >= 8 ? 2 : 1;
      c.strokeStyle = ring;
      c.lineWidth = lw;
      c.strokeRect(x + lw / 2, y + lw / 2, s - lw, s - lw);
    }
  }

  function drawRollout() {
    const ro = st.ro;
    if (!ro || st.route.page !== "rollout") return;
    const h = ro.head;
    main.innerHTML = `<h1 id="ro-title"></h1><div id="ro-cards" class="cards"></div>
      <h2>Phases</h2><div id="timeline" class="timeline"></div>
      <h2>Actions</h2><div id="actions" class="actions"></div>
      <h2>Waves</h2>${legend()}<div id="waves">${h.waves.map((w, wi) =>
        `<div class="wave" id="wave-${wi + 1}"><div class="title" id="wave-title-${wi + 1}"></div><canvas class="grid" data-w="${wi}"></canvas></div>`).join("")}</div>
      <h2>Gates</h2><table id="gates"></table>
      <h2>Registry: parity and reachability</h2><div id="chart"></div>
      <h2>Decisions</h2><table id="decisions"></table>`;
    const canvases = [...main.querySelectorAll("canvas.grid")];
    const size = ro.nodes.length > 2000 ? 5 : 10, pitch = size + (size > 5 ? 2 : 1);
    const width = Math.max(200, (canvases[0] ? canvases[0].parentElement.clientWidth : 1000) - 22);
    const g = { size, pitch, cols: Math.floor(width / pitch), at: new Array(ro.nodes.length), byWave: h.waves.map(() => []), ctx: [] };
    ro.nodes.forEach((n, i) => { const w = g.byWave[n[1]]; if (w) { g.at[i] = { w: n[1], k: w.length }; w.push(i); } });
    const dpr = window.devicePixelRatio || 1;
    canvases.forEach((cv, wi) => {
      const rows = Math.max(1, Math.ceil(g.byWave[wi].length / g.cols));
      cv.style.width = g.cols * pitch + "px";
      cv.style.height = rows * pitch + "px";
      cv.width = g.cols * pitch * dpr;
      cv.height = rows * pitch * dpr;
      const c = cv.getContext("2d");
      c.scale(dpr, dpr);
      g.ctx[wi] = c;
    });
    ro.grid = g;
    for (let i = 0; i < ro.nodes.length; i++) drawCell(i);
    drawActions();
    drawHead();
    drawChart();
  }

  // nodeAt is the node under a point of a wave's canvas, or -1.
  function nodeAt(cv, clientX, clientY) {
    const g = st.ro && st.ro.grid;
    if (!g) return -1;
    const r = cv.getBoundingClientRect();
    const col = Math.floor((clientX - r.left) / g.pitch), row = Math.floor((clientY - r.top) / g.pitch);
    if (col < 0 || col >= g.cols || row < 0) return -1;
    const i = g.byWave[+cv.dataset.w][row * g.cols + col];
    return i === undefined ? -1 : i;
  }

  function drawHead() {
    const ro = st.ro;
    if (!ro || st.route.page !== "rollout" || !$("#ro-title")) return;
    const h = ro.head;
    $("#ro-title").innerHTML = `${esc(h.id)} ${phase(h.phase)}${flags(h)}`;
    const active = h.nodes ? h.nodes.active || 0 : 0;
    $("#ro-cards").innerHTML = [
      ["from → to", esc(h.from) + " → " + esc(h.to)],
      ["wave", `<span id="ro-wave">${h.wave} of ${h.waves.length}</span>`],
      ["nodes", `${h.node_count} (${active} active)`],
      ["age", age(h.created)],
      ["finalize", esc(h.finalize) + (h.finalize_approved ? " (approved)" : "")],
      ["registry", h.registry && h.registry.at ? (h.registry.reachable ? "reachable" : '<span class="bad">unreachable</span>') + ", parity " + (+h.registry.parity).toFixed(3) : "no report yet"],
    ].map(([k, v]) => `<div class="card"><div class="muted">${k}</div><div>${v}</div></div>`).join("");
    $("#timeline").innerHTML = h.phases.map((p, i) => `${i ? '<span class="arrow">→</span>' : ""}<div class="step${i === h.phases.length - 1 ? " now" : ""}"><b>${esc(p.phase)}</b>${esc(clock(p.at))}</div>`).join("");
    h.waves.forEach((w, wi) => {
      const el = $("#wave-title-" + (wi + 1));
      if (el) {
        el.textContent = `wave ${wi + 1} · ${w.role} · ${w.size} node${w.size === 1 ? "" : "s"} · ${w.done} done` + (w.failed ? ` · ${w.failed} failed` : "") + (wi + 1 === h.wave && !isEnded(h.phase) ? " · current" : "");
        el.parentElement.classList.toggle("current", wi + 1 === h.wave && !isEnded(h.phase));
      }
    });
    $("#gates").innerHTML = "<thead><tr><th>gate</th><th>threshold</th><th>now</th><th>last decision</th></tr></thead><tbody>" +
      h.gates.map((g) => `<tr data-check="${esc(g.check)}"><td>${esc(g.check)}</td><td>${esc(g.threshold)}</td><td class="${g.ok === true ? "ok" : g.ok === false ? "bad" : ""}">${esc(g.observed)}${g.note ? '<div class="muted">' + esc(g.note) + "</div>" : ""}</td>` +
        `<td>${esc(g.last || "")}${g.last_at ? ' <span class="muted">' + esc(clock(g.last_at)) + "</span>" : ""}</td></tr>`).join("") + "</tbody>";
    const ds = h.decisions.slice().reverse();
    $("#decisions").innerHTML = "<thead><tr><th>at</th><th>decision</th><th>check</th><th>observed / threshold</th><th>nodes</th><th>detail</th></tr></thead><tbody>" +
      ds.map((d) => `<tr><td>${esc(clock(d.at))}</td><td>${esc(d.decision)}${d.repeated ? " ×" + (d.repeated + 1) : ""}</td><td>${esc(d.check || "")}</td>` +
        `<td class="num">${d.observed !== undefined ? esc(fmt(d.observed)) : ""}${d.threshold !== undefined ? " / " + esc(fmt(d.threshold)) : ""}</td>` +
        `<td class="detail">${esc((d.nodes || []).join(", "))}${d.node_count > (d.nodes || []).length ? " … and " + (d.node_count - d.nodes.length) + " more" : ""}</td><td class="detail">${esc(d.detail || "")}</td></tr>`).join("") +
      (h.earlier_decisions ? `<tr><td colspan="6" class="muted">… and ${h.earlier_decisions} earlier decisions</td></tr>` : "") + "</tbody>";
    updateActions();
  }

  function fmt(v) { return Number.isInteger(v) ? String(v) : v.toFixed(3); }
  function isEnded(p) { return p === "finalized" || p === "switched-back" || p === "failed"; }

  // ---- chart ------------------------------------------------------------

  function drawChart() {
    const ro = st.ro, box = $("#chart");
    if (!ro || !box) return;
    const pts = ro.series, W = 900, H = 180, L = 40, R = 10, T = 10, B = 26;
    if (pts.length < 1) { box.innerHTML = '<p class="muted">No registry report yet.</p>'; return; }
    const t0 = new Date(pts[0].t).getTime(), t1 = Math.max(t0 + 1000, new Date(pts[pts.length - 1].t).getTime());
    const x = (t) => L + ((new Date(t).getTime() - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v) * (H - T - B);
    const line = (key) => {
      let d = "", pen = false;
      for (const p of pts) {
        if (p[key] === undefined || p[key] === null) { pen = false; continue; }
        d += (pen ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p[key]).toFixed(1);
        pen = true;
      }
      return d;
    };
    let bands = "";
    for (let i = 0; i < pts.length; i++) {
      if (!pts[i].reachable) {
        const x1 = x(pts[i].t), x2 = i + 1 < pts.length ? x(pts[i + 1].t) : x1 + 3;
        bands += `<rect x="${x1.toFixed(1)}" y="${T}" width="${Math.max(2, x2 - x1).toFixed(1)}" height="${H - T - B}" fill="#fde2e2"/>`;
      }
    }
    const grid = [0, 0.5, 1].map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="4" y="${y(v) + 4}">${v}</text>`).join("");
    box.innerHTML = `<svg class="chart" id="chart-svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${bands}${grid}
      <path d="${line("parity")}" fill="none" stroke="#1f5fbf" stroke-width="2"/>
      <path d="${line("healthy")}" fill="none" stroke="#2f9e62" stroke-width="2" stroke-dasharray="5 3"/>
      <text x="${L}" y="${H - 8}">${esc(clock(pts[0].t))}</text><text x="${W - R - 50}" y="${H - 8}">${esc(clock(pts[pts.length - 1].t))}</text>
      <text x="${L + 120}" y="${H - 8}" fill="#1f5fbf">— parity</text><text x="${L + 200}" y="${H - 8}" fill="#2f9e62">- - healthy share of active nodes</text>
      <text x="${L + 420}" y="${H - 8}">red band: new registry unreachable · ${pts.length} points</text></svg>`;
  }

  // ---- actions ----------------------------------------------------------

  const ACTIONS = ["pause", "resume", "approve", "abort", "finalize"];

  function drawActions() {
    const can = canSign();
    $("#actions").innerHTML = `
      <div><label>Operator key (PKCS#8 .key file, stays in this tab) <input type="file" id="key-file" accept=".key,.pem"></label>
        <label>key id <input type="text" id="key-id" size="16" placeholder="from the file name"></label>
        <label>reason <input type="text" id="reason" size="30" maxlength="500"></label>
        <span id="key-state" class="muted">${can ? "no key loaded" : "this browser cannot sign here (WebCrypto Ed25519 over https or 127.0.0.1): run the command below instead"}</span></div>
      <div>${ACTIONS.map((a) => `<button id="act-${a}" data-act="${a}" disabled>${a}</button>`).join("")}</div>
      <div id="action-result" class="muted"></div>
      <div class="muted">or with the CLI:</div><pre class="cmd" id="action-cmd"></pre>`;
    $("#key-file").addEventListener("change", loadKey);
    for (const b of main.querySelectorAll("#actions button")) {
      b.addEventListener("click", () => act(b.dataset.act));
      b.addEventListener("mouseenter", () => showCommand(b.dataset.act));
    }
    if (st.key) $("#key-state").textContent = `key ${st.key.id} loaded (not extractable, held in this tab only)`;
    if (st.key) $("#key-id").value = st.key.id;
  }

  function showCommand(a) {
    const h = st.ro && st.ro.head;
    if (h && h.commands) $("#action-cmd").textContent = h.commands[a || "pause"] + (($("#reason") || {}).value ? ` -reason '${$("#reason").value.replace(/'/g, "")}'` : "");
  }

  function updateActions() {
    const h = st.ro && st.ro.head;
    if (!h || !$("#actions")) return;
    for (const a of ACTIONS) {
      const b = $("#act-" + a);
      if (b) {
        b.disabled = !st.key || !h.allowed[a];
        b.title = h.allowed[a] ? "" : `the rollout does not take ${a} now (${h.phase}${h.paused ? ", paused" : ""}${h.held ? ", held" : ""})`;
      }
    }
    if (!$("#action-cmd").textContent) showCommand("pause");
  }

  async function loadKey(e) {
    const f = e.target.files[0];
    if (!f) return;
    const state = $("#key-state");
    try {
      const pem = await f.text();
      if (!canSign()) throw new Error("WebCrypto is not available on this page (it needs https or 127.0.0.1)");
      const key = await importSigningKey(pem);
      const id = $("#key-id").value.trim() || keyID(f.name);
      st.key = { id, key };
      $("#key-id").value = id;
      state.textContent = `key ${id} loaded (not extractable, held in this tab only)`;
      state.className = "ok";
    } catch (err) {
      st.key = null;
      state.textContent = "cannot use this key: " + err.message + ". Run the command below instead.";
      state.className = "bad";
    }
    e.target.value = ""; // the file's bytes are not kept
    updateActions();
  }

  function requestID() {
    const b = new Uint8Array(8);
    crypto.getRandomValues(b);
    return "req-" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function act(kind) {
    const h = st.ro.head, out = $("#action-result");
    showCommand(kind);
    if (!st.key) { out.textContent = "load an operator key first, or run the command below"; return; }
    const id = ($("#key-id").value || st.key.id).trim();
    const now = new Date().toISOString();
    const body = { request_id: requestID(), requested_at: now, rollout_id: h.id, requested_by: id };
    const reason = $("#reason").value.trim();
    if (reason) body.reason = reason;
    if (kind === "approve") body.wave = h.wave;
    const data = JSON.stringify(body), type = `regshift.request.${kind}.v1`;
    out.className = "muted";
    out.textContent = `signing ${kind}…`;
    try {
      const sig = await signRequest(st.key.key, type, data);
      const resp = await fetch("/v1/requests", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ce_id: body.request_id, ce_type: type, ce_source: "regshift/console", ce_time: now, partitionkey: h.id, ce_keyid: id, ce_signature: sig, data }),
      });
      const ans = await resp.json().catch(() => ({}));
      if (resp.status === 202) {
        out.className = "ok";
        out.id = "action-result";
        out.textContent = `${kind} ${body.request_id} signed by ${id} and relayed to ${ans.topic}; the decision appears below when the coordinator acts on it.`;
      } else {
        out.className = "bad";
        out.textContent = `${kind} refused (${resp.status}${ans.reason ? ", " + ans.reason : ""}): ${ans.error || resp.statusText}`;
      }
    } catch (err) {
      out.className = "bad";
      out.textContent = `${kind} could not be signed or sent: ${err.message}. Run the command below instead.`;
    }
  }

  // ---- tooltip over the grid --------------------------------------------

  function nodeTip(i) {
    const n = st.ro.nodes[i];
    return `${n[0]}  (${n[2]}, wave ${n[1] + 1})\nprogress: ${n[3]}\nhealth: ${n[4] || "no report"}${n[7] ? " — " + n[7] : ""}` +
      `\npending: ${n[5] || "none"}${n[6] ? "\nfailed: " + n[6] : ""}`;
  }
  main.addEventListener("mousemove", (e) => {
    const cv = e.target.closest && e.target.closest("canvas.grid");
    const i = cv ? nodeAt(cv, e.clientX, e.clientY) : -1;
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = nodeTip(i);
    tip.hidden = false;
    tip.style.left = Math.min(window.innerWidth - 470, e.clientX + 14) + "px";
    tip.style.top = e.clientY + 14 + "px";
  });
  main.addEventListener("mouseleave", () => { tip.hidden = true; });

  // ---- nodes page -------------------------------------------------------

  function drawNodesPage() {
    const p = st.route.params;
    main.innerHTML = `<h1>Nodes</h1><div class="filters">
      <input type="text" id="f-q" placeholder="node id contains…" value="${esc(p.get("q") || "")}">
      <select id="f-rollout"><option value="">every rollout</option>${[...st.rollouts.keys()].map((id) => `<option${id === p.get("rollout") ? " selected" : ""}>${esc(id)}</option>`).join("")}</select>
      <select id="f-state"><option value="">any state</option>${[...STATES, "passing", "warning", "critical", "unknown"].map((s) => `<option${s === p.get("state") ? " selected" : ""}>${s}</option>`).join("")}</select>
      <span id="f-count" class="muted"></span></div><table id="nodes"></table><div id="pager"></div>`;
    const apply = () => {
      const q = new URLSearchParams();
      for (const [k, id] of [["q", "#f-q"], ["rollout", "#f-rollout"], ["state", "#f-state"]]) if ($(id).value) q.set(k, $(id).value);
      history.replaceState(null, "", "#/nodes" + (q.toString() ? "?" + q : ""));
      st.route = parseRoute();
      loadNodes();
    };
    $("#f-q").addEventListener("input", () => later(apply, 250));
    $("#f-rollout").addEventListener("change", apply);
    $("#f-state").addEventListener("change", apply);
    loadNodes();
  }

  let nodesOffset = 0;
  async function loadNodes() {
    if (st.route.page !== "nodes" || !$("#nodes")) return;
    const q = new URLSearchParams(st.route.params);
    q.set("limit", "200");
    q.set("offset", String(nodesOffset));
    const resp = await fetch("/v1/nodes/search?" + q);
    const page = await resp.json();
    if (!resp.ok) { $("#nodes").innerHTML = `<tr><td class="bad">${esc(page.error)}</td></tr>`; return; }
    $("#f-count").textContent = `${page.matched} of ${page.total} nodes match` + (page.matched > page.nodes.length ? `; showing ${page.offset + 1}–${page.offset + page.nodes.length}` : "");
    $("#nodes").innerHTML = "<thead><tr><th>node</th><th>rollout</th><th>roles</th><th>wave</th><th>progress</th><th>health</th><th>pending</th><th>failure</th></tr></thead><tbody>" +
      page.nodes.map((n) => `<tr><td>${esc(n.id)}</td><td><a href="#/rollouts/${encodeURIComponent(n.rollout)}">${esc(n.rollout)}</a></td><td>${esc((n.roles || []).join(", "))}</td>` +
        `<td class="num">${n.wave + 1}</td><td><i class="s-${n.failure ? "failed" : n.reached || "none"}" style="display:inline-block;width:10px;height:10px;border-radius:2px"></i> ${esc(n.reached || "none")}</td>` +
        `<td class="${n.health === "critical" ? "bad" : ""}">${esc(n.health || "no report")}<div class="muted detail">${esc(n.health_detail || "")}</div></td>` +
        `<td class="detail">${n.pending ? esc(n.pending.command.kind + " " + n.pending.command.interface + " (sent " + n.pending.sends + "×)") : ""}</td><td class="detail bad">${esc(n.failure || "")}</td></tr>`).join("") + "</tbody>";
    $("#pager").innerHTML = (nodesOffset > 0 ? '<button id="prev">previous</button>' : "") + (page.offset + page.nodes.length < page.matched ? '<button id="next">next</button>' : "");
    if ($("#prev")) $("#prev").onclick = () => { nodesOffset = Math.max(0, nodesOffset - 200); loadNodes(); };
    if ($("#next")) $("#next").onclick = () => { nodesOffset += 200; loadNodes(); };
  }

  window.addEventListener("hashchange", () => { nodesOffset = 0; route(); });
  route();
}
