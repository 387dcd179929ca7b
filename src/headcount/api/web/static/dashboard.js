// The organizer dashboard: every capacity of one event, a chart of the last minutes and a
// sell-out estimate per ticket type from the recent sales rate. Samples are kept in
// sessionStorage so a reload does not lose the chart.
import { setText, watchCapacity } from "./live.js";

const main = document.querySelector("main[data-page=dashboard]");
const eventId = main.dataset.eventId;
const HISTORY_KEY = `headcount.dashboard.${eventId}`;
const CHART_MINUTES = 10;
const RATE_WINDOW_MS = 5 * 60 * 1000;
const MIN_RATE_SPAN_MS = 10 * 1000;
const SVG = "http://www.w3.org/2000/svg";

let history = [];
try {
  history = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]");
} catch {
  history = [];
}

/** Live viewers, once the presence feature contributes a section; null until then. */
function viewerCount(snap) {
  const s = snap.sections || {};
  const v = s.viewers || s.stream || s.virtual;
  if (v === undefined || v === null) return null;
  if (typeof v === "number") return v;
  for (const key of ["current", "count", "active", "live", "viewers"]) {
    if (typeof v[key] === "number") return v[key];
  }
  return null;
}

function record(snap) {
  const now = Date.now();
  const sample = {
    t: now,
    viewers: viewerCount(snap),
    types: Object.fromEntries(
      snap.tickets.ticket_types.map((tt) => [tt.id, tt.quantity_sold + tt.quantity_reserved]),
    ),
  };
  sample.taken = snap.tickets.sold + snap.tickets.reserved;
  history.push(sample);
  history = history.filter((s) => now - s.t <= CHART_MINUTES * 60 * 1000);
  try {
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
  } catch {
    /* storage full or disabled: the chart simply restarts on reload */
  }
}

function formatMinutes(minutes) {
  if (minutes < 1) return "under a minute";
  if (minutes < 90) return `≈ ${Math.round(minutes)} min`;
  return `≈ ${(minutes / 60).toFixed(1)} h`;
}

/** Tickets per minute over the last few minutes, from the oldest sample in the window. */
function rateOf(ticketTypeId) {
  const now = Date.now();
  const recent = history.filter((s) => now - s.t <= RATE_WINDOW_MS && ticketTypeId in s.types);
  if (recent.length < 2) return null;
  const first = recent[0];
  const last = recent[recent.length - 1];
  if (last.t - first.t < MIN_RATE_SPAN_MS) return null;
  return Math.max(0, last.types[ticketTypeId] - first.types[ticketTypeId]) /
    ((last.t - first.t) / 60000);
}

function estimate(tt) {
  if (tt.is_sold_out) return { rate: rateOf(tt.id), eta: "Sold out" };
  const rate = rateOf(tt.id);
  if (rate === null) return { rate, eta: "measuring…" };
  if (rate === 0) return { rate, eta: "no recent sales" };
  const minutes = tt.quantity_available / rate;
  const at = new Date(Date.now() + minutes * 60000)
    .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return { rate, eta: `${formatMinutes(minutes)} (${at})` };
}

function renderTable(snap) {
  const body = document.querySelector("#ticket-table tbody");
  for (const tt of snap.tickets.ticket_types) {
    let row = body.querySelector(`tr[data-ticket-type-id="${tt.id}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.ticketTypeId = tt.id;
      const head = document.createElement("th");
      head.scope = "row";
      head.textContent = tt.name;
      row.append(head);
      for (const field of ["sold", "reserved", "available", "total", "rate", "eta"]) {
        const cell = document.createElement("td");
        cell.dataset.field = field;
        row.append(cell);
      }
      body.append(row);
    }
    setText(row, "sold", tt.quantity_sold);
    setText(row, "reserved", tt.quantity_reserved);
    setText(row, "available", tt.quantity_available);
    setText(row, "total", tt.quantity_total);
    const { rate, eta } = estimate(tt);
    setText(row, "rate", rate === null ? "–" : `${rate.toFixed(1)}/min`);
    setText(row, "eta", eta);
  }
}

function svg(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function renderChart() {
  const W = 640;
  const H = 200;
  const pad = { l: 36, r: 36, t: 10, b: 24 };
  const now = Date.now();
  const start = now - CHART_MINUTES * 60 * 1000;
  const x = (t) => pad.l + ((t - start) / (now - start)) * (W - pad.l - pad.r);
  const maxTaken = Math.max(1, ...history.map((s) => s.taken));
  const viewerSamples = history.filter((s) => s.viewers !== null);
  const maxViewers = Math.max(1, ...viewerSamples.map((s) => s.viewers));
  const y = (v, max) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });
  root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, stroke: "#d0d7de" }));
  for (let m = 0; m <= CHART_MINUTES; m += 2) {
    const label = svg("text", { x: x(now - m * 60000), y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#57606a" });
    label.textContent = m === 0 ? "now" : `-${m}m`;
    root.append(label);
  }
  const axis = (value, side, color) => {
    const t = svg("text", { x: side === "l" ? pad.l - 4 : W - pad.r + 4, y: pad.t + 10, "text-anchor": side === "l" ? "end" : "start", "font-size": 11, fill: color });
    t.textContent = String(value);
    root.append(t);
  };
  axis(maxTaken, "l", "#0a58ca");
  const line = (samples, value, max, color) => {
    if (samples.length === 0) return;
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(value(s), max).toFixed(1)}`);
    if (samples.length === 1) points.push(`${x(now).toFixed(1)},${y(value(samples[0]), max).toFixed(1)}`);
    root.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2.5, "stroke-linejoin": "round" }));
  };
  line(history, (s) => s.taken, maxTaken, "#0a58ca");
  if (viewerSamples.length) {
    axis(maxViewers, "r", "#b42318");
    line(viewerSamples, (s) => s.viewers, maxViewers, "#b42318");
  }
  const chart = document.getElementById("chart");
  chart.replaceChildren(root);
  const last = history[history.length - 1];
  if (last) {
    const viewers = last.viewers === null ? "" : `, ${last.viewers} live viewers`;
    chart.setAttribute("aria-label", `Tickets taken over the last ${CHART_MINUTES} minutes: now ${last.taken}${viewers}.`);
  }
}

/** Capacities contributed by features (registrations, sessions, booths …) as plain tables. */
function renderSections(snap) {
  const names = Object.keys(snap.sections || {});
  const holder = document.getElementById("section-list");
  document.getElementById("sections").hidden = names.length === 0;
  holder.replaceChildren(...names.map((name) => sectionTable(name, snap.sections[name])));
}

const label = (key) => key.replace(/_/g, " ");
const cellText = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));

function sectionTable(name, value) {
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  const table = document.createElement("table");
  table.dataset.section = name;
  const caption = document.createElement("caption");
  caption.textContent = label(name);
  table.append(caption);
  const rows = Array.isArray(value) ? value : Array.isArray(value?.items) ? value.items : null;
  if (rows) {
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== "id");
    const head = table.createTHead().insertRow();
    for (const k of keys) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = label(k);
      head.append(th);
    }
    const body = table.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      for (const k of keys) tr.insertCell().textContent = cellText(r[k]);
    }
  } else {
    const body = table.createTBody();
    for (const [k, v] of Object.entries(value ?? {})) {
      const tr = body.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = label(k);
      tr.append(th);
      const td = tr.insertCell();
      td.textContent = cellText(v);
      td.dataset.field = `${name}.${k}`;
    }
  }
  wrap.append(table);
  return wrap;
}

function render(snap) {
  record(snap);
  const tiles = document.getElementById("tiles");
  setText(tiles, "sold", snap.tickets.sold);
  setText(tiles, "reserved", snap.tickets.reserved);
  setText(tiles, "available", snap.tickets.available);
  setText(tiles, "total", snap.tickets.total);
  setText(tiles, "max-attendees", snap.max_attendees ?? "none");
  renderTable(snap);
  renderChart();
  renderSections(snap);
  const updated = document.getElementById("updated");
  updated.dateTime = snap.taken_at;
  updated.textContent = new Date(snap.taken_at).toLocaleTimeString();
}

function health(ok) {
  const live = document.getElementById("live");
  live.dataset.state = ok ? "live" : "stale";
  live.firstChild.textContent = ok ? "Live · updated " : "Connection lost, retrying · last update ";
}

watchCapacity(eventId, Number(main.dataset.pollMs) || 2000, render, health);
