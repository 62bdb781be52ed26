"use strict";
// Renders the snapshot pushed by /api/stream (server-sent events); no framework.
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const num = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(undefined, {maximumFractionDigits: d, minimumFractionDigits: d}));
const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(2) + " %");
// Event time in UTC with its date: a replay of history is years back, not "today".
const time = (ns) => (ns ? new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 19) : "");
// A percentile beyond the histogram's top bucket is known only as "above" that bound.
const latency = (f, p) => {
  const above = f[`tick_to_decision_${p}_ms_above`];
  if (above) return `> ${num(above, 0)} ms`;
  // Interpolated within a histogram bucket: its bounds say how exact the figure is.
  const bucket = f[`tick_to_decision_${p}_ms_bucket`];
  return num(f[`tick_to_decision_${p}_ms`], 1) + " ms" + (bucket ? ` (bucket ${num(bucket[0], 0)}–${num(bucket[1], 0)})` : "");
};
const short = (id) => esc(String(id ?? "").slice(0, 10));

function table(rows, columns) {
  if (!rows || rows.length === 0) return "<i>none</i>";
  const head = columns.map(([title]) => `<th>${esc(title)}</th>`).join("");
  const body = rows.map((r) => "<tr>" + columns.map(([, f]) => `<td>${f(r)}</td>`).join("") + "</tr>").join("");
  return `<table><tr>${head}</tr>${body}</table>`;
}
function kv(pairs) { return pairs.map(([k, v]) => `<span>${esc(k)}</span><b>${v}</b>`).join(""); }

function render(s) {
  const e = s.equity || {}, risk = s.risk || {}, p = s.pipeline || {}, f = s.flows || {}, m = s.models || {};
  const state = (risk.state || {}).state || "active";
  $("state").textContent = state; $("state").className = state;
  $("updated").textContent = time(s.ts);
  $("run").textContent = (s.run_id ? s.run_id + ", " : "") + "events from " + time(s.since_ns) + (s.until_ns ? " to " + time(s.until_ns) : "");
  $("curve").innerHTML = e.curve || "";
  $("pnl").innerHTML = kv([["equity", num(e.equity)], ["realized P&L", num(e.realized)], ["unrealized P&L", num(e.unrealized)],
    ["fees", num(e.fees)], ["drawdown", pct(e.drawdown)], ["P&L snapshots", num(e.points, 0)]]);
  $("positions").innerHTML = table(s.positions, [["instrument", (r) => esc(r.instrument)], ["qty", (r) => num(r.quantity, 0)],
    ["avg price", (r) => num(r.average_price)], ["realized", (r) => num(r.realized_pnl)], ["limit use", (r) => pct(r.utilization)]]);
  const denials = Object.entries(risk.denials || {}).map(([k, v]) => `${esc(k)}=${v}`).join(", ") || "none";
  $("risk").innerHTML = kv([["state", esc(state)], ["trigger", esc((risk.state || {}).trigger)], ["approved", num(risk.approved, 0)],
    ["denied", denials], ["gross exposure", num(e.gross)], ["net exposure", num(e.net)], ["gross limit use", pct(risk.gross_utilization)],
    ...(risk.metrics || []).map((r) => {
      // Counts (samples, open orders) are whole numbers: no decimals for them or their limit.
      const d = Number.isInteger(Number(r.value)) && (!(r.limit_value > 0) || Number.isInteger(Number(r.limit_value))) ? 0 : 4;
      const shown = r.limit_value > 0 ? `${num(r.value, d)} / ${num(r.limit_value, d)}` : num(r.value, d);
      // open_orders is the working orders now; the gate's own figure is a scheduled sample.
      return [r.metric, r.sampled !== undefined ? `${shown} (gate at ${time(r.ts)}: ${num(r.sampled, 0)})` : shown];
    }), ["figures as of", time(risk.metrics_ts) || "–"]]);
  const orders = s.orders || {};
  // How many are working (the risk panel's open_orders as the store sees it), the newest listed.
  const shown = (orders.working || []).length, count = orders.working_count ?? shown;
  $("working").innerHTML = `<p>working: <b id="working-count">${num(count, 0)}</b>`
    + (count > shown ? ` (newest ${shown} listed)` : "") + "</p>" + table(orders.working, [["order", (r) => short(r.client_order_id)], ["instr", (r) => esc(r.instrument)],
    ["side", (r) => esc(r.side)], ["qty", (r) => num(r.quantity, 0)], ["time", (r) => time(r.ts)]]);
  $("fills").innerHTML = table(orders.fills, [["order", (r) => short(r.client_order_id)], ["instr", (r) => esc(r.instrument)],
    ["side", (r) => esc(r.side)], ["qty", (r) => num(r.quantity, 0)], ["price", (r) => num(r.price)], ["time", (r) => time(r.ts)]]);
  $("signals").innerHTML = table(s.signals, [["instr", (r) => esc(r.instrument)], ["dir", (r) => esc(r.direction)],
    ["p(up)", (r) => num(r.probability_up, 3)], ["decision", (r) => esc(r.outcome)], ["reason", (r) => esc(r.reason)], ["time", (r) => time(r.ts)]]);
  $("models").innerHTML = table(m.scores, [["model", (r) => esc(r.model)], ["instr", (r) => esc(r.instrument)], ["role", (r) => esc(r.role)],
    ["labelled", (r) => num(r.n_labelled, 0)], ["accuracy", (r) => pct((r.scores || {}).accuracy)],
    ["rolling", (r) => pct((r.scores || {}).rolling_accuracy)], ["memory", (r) => num(r.memory_bytes / 1024, 0) + " KiB"]])
    + `<p>drift detections: <b>${num(m.drift_total, 0)}</b></p>`
    + table(m.drift, [["instr", (r) => esc(r.instrument)], ["detector", (r) => esc(r.detector)], ["stream", (r) => esc(r.stream)], ["time", (r) => time(r.ts)]]);
  const lag = Object.values(f.consumer_lag || {});
  $("pipeline").innerHTML = kv([["ticks stored", `<span id="ticks">${num(p.ticks, 0)}</span>`], ["newest tick age", num(p.tick_age_s, 1) + " s"],
    ["last insert age", num(p.persist_age_s, 1) + " s"], ["tick→decision p50", latency(f, "p50")],
    ["tick→decision p99", latency(f, "p99")], ["consumer lag (max)", lag.length ? num(Math.max(...lag), 0) : "–"],
    ["dead letters", Object.entries(p.dlq || {}).map(([k, v]) => `${esc(k)}=${v}`).join(", ") || "none"]]);
  $("health").innerHTML = table(s.health, [["check", (r) => esc(r.name)], ["", (r) => (r.ok ? '<span class="ok">ok</span>' : '<span class="bad">FAIL</span>')],
    ["detail", (r) => esc(r.detail)]]) + (s.error ? `<p class="bad">${esc(s.error)}</p>` : "");
  $("alerts").innerHTML = table(s.alerts, [["name", (r) => esc(r.name)], ["severity", (r) => esc(r.severity)], ["message", (r) => esc(r.message)], ["time", (r) => time(r.ts)]]);
  $("audit").innerHTML = table(s.audit, [["action", (r) => esc(r.action)], ["actor", (r) => esc(r.actor)], ["subject", (r) => esc(r.subject)],
    ["reason", (r) => esc(r.reason)], ["time", (r) => time(r.ts)]]);
}

async function post(url, body) {
  // State-changing calls carry the key in a header (never only the cookie): no CSRF.
  const headers = {"Content-Type": "application/json", "X-Hfl-Key": $("key").value};
  const response = await fetch(url, {method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin"});
  return [response.ok, await response.json()];
}

let stream = null;
function listen() {
  if (stream) stream.close();
  stream = new EventSource("/api/stream");
  stream.onmessage = (event) => render(JSON.parse(event.data));
}

async function signIn() {
  const [ok, body] = await post("/api/session", {key: $("key").value});
  $("message").textContent = ok ? `signed in as ${body.name} (${body.role})` : `sign-in refused: ${body.error}`;
  if (ok) listen();
}

async function control(action) {
  const reason = action === "kill" ? "kill switch pressed on the dashboard" : "resumed from the dashboard";
  if (!window.confirm(`Really ${action} trading for this account?`)) { $("message").textContent = `${action} cancelled`; return; }
  const [ok, body] = await post("/api/control", {action, reason});
  $("message").textContent = ok ? `${action} sent (${body.command_id.slice(0, 8)})` : `${action} refused: ${body.error}`;
}

async function runSql() {
  const [ok, body] = await post("/api/sql", {sql: $("sql-input").value});
  if (!ok) { $("sql-out").innerHTML = `<p class="bad">${esc(body.error)}</p>`; return; }
  const rows = body.rows.map((r) => Object.fromEntries(body.columns.map((c, i) => [c, r[i]])));
  $("sql-out").innerHTML = table(rows, body.columns.map((c) => [c, (r) => esc(r[c])])) + `<p>${body.total} rows</p>`;
}

$("kill").addEventListener("click", () => control("kill"));
$("resume").addEventListener("click", () => control("resume"));
$("sql-run").addEventListener("click", runSql);
$("signin").addEventListener("click", signIn);
listen();
