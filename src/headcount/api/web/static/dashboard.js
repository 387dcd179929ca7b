// The organizer dashboard: every capacity of one event, a chart of the last minutes and a
// sell-out estimate per ticket type from the recent sales rate. Snapshots arrive pushed
// (or polled); the chart samples the latest one on a steady clock so quiet minutes show
// as flat lines. Samples are kept in sessionStorage so a reload does not lose the chart.
import { setText, watchCapacity } from "./live.js";

const main = document.querySelector("main[data-page=dashboard]");
const eventId = main.dataset.eventId;
const SAMPLE_MS = Number(main.dataset.pollMs) || 2000;
const HISTORY_KEY = `headcount.dashboard.${eventId}`;
const CHART_MINUTES = 10;
const RATE_WINDOW_MS = 5 * 60 * 1000;
const MIN_RATE_SPAN_MS = 10 * 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = { taken: "#0a58ca", registered: "#1a7f37", viewers: "#b42318" };

let history = [];
try {
  history = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]");
} catch {
  history = [];
}
let latest = null;

function record() {
  if (!latest) return;
  const now = Date.now();
  history.push({
    t: now,
    taken: latest.tickets.sold + latest.tickets.reserved,
    registered: latest.registrations ? latest.registrations.registered : null,
    viewers: latest.viewers ? latest.viewers.viewers : null,
    types: Object.fromEntries(
      latest.tickets.ticket_types.map((tt) => [tt.id, tt.quantity_sold + tt.quantity_reserved]),
    ),
  });
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

/** Tickets per minute over the last few minutes (net of releases), or null while measuring. */
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
  const rate = rateOf(tt.id);
  if (tt.is_sold_out) return { rate, eta: "Sold out" };
  if (rate === null) return { rate, eta: "measuring…" };
  if (rate === 0) return { rate, eta: "no recent sales" };
  const minutes = tt.quantity_available / rate;
  const at = new Date(Date.now() + minutes * 60000)
    .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return { rate, eta: `${formatMinutes(minutes)} (${at})` };
}

function renderTicketTable(snap) {
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

const dash = (v) => (v === null || v === undefined ? "–" : String(v));
const state = (isFull, extra = "") => (isFull === null ? "unknown" : isFull ? "Full" : extra || "Open");
// Places kept for people whose connection dropped: they count against the limit too.
const held = (n) => (n ? ` (+${n} held)` : "");

/** One row per item; the first cell is the row header. */
const LISTS = {
  // From 90 % of the maximum an area says so: the door will close soon.
  areas: (a) => [a.name, a.inside, dash(a.max_occupancy), dash(a.remaining),
    a.is_full ? "Full" : a.warning ? "Warning: 90 % full" : "Open"],
  pools: (p) => [p.name, p.quantity_used, dash(p.admission_limit), dash(p.quantity_available),
    p.is_exhausted ? "Exhausted" : "Open"],
  sessions: (s) => [s.title, s.current_attendance, s.max_participants, s.remaining,
    s.waitlist_enabled ? s.waitlist_length : "no waitlist"],
  booths: (b) => [b.name, dash(b.visitors) + held(b.in_grace), dash(b.max_visitors),
    state(b.is_full)],
  breakout_rooms: (r) => [r.name, dash(r.participants) + held(r.in_grace), r.capacity,
    r.status === "open" ? state(r.is_full) : r.status],
  huddles: (h) => [h.name, h.members, h.capacity, state(h.is_full)],
};

function renderLists(snap) {
  for (const [name, cells] of Object.entries(LISTS)) {
    const section = main.querySelector(`section[data-list="${name}"]`);
    const items = snap[name] || [];
    section.hidden = items.length === 0;
    section.querySelector("tbody").replaceChildren(...items.map((item) => {
      const tr = document.createElement("tr");
      tr.dataset.id = item.id;
      if (item.warning) tr.dataset.warning = "true";
      cells(item).forEach((value, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = String(value);
        tr.append(cell);
      });
      return tr;
    }));
  }
}

/** The waiting room's figures (hidden when the event has none). */
function renderWaitingRoom(snap) {
  const section = document.getElementById("waiting-room");
  const room = snap.waiting_room;
  section.hidden = !room;
  if (!room) return;
  const figures = room.figures || {};
  setText(section, "queue-status", room.status);
  setText(section, "queued", dash(figures.queued));
  setText(section, "active-buyers", dash(figures.active_buyers));
  setText(section, "active-limit", room.active_limit);
  setText(section, "admitted-last-minute", dash(figures.admitted_last_minute));
  setText(section, "admit-per-minute", room.admit_per_minute);
  const wait = figures.median_wait_seconds;
  setText(section, "median-wait", wait === null || wait === undefined ? "–" : `${Math.round(wait)} s`);
}

function svg(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function renderChart() {
  const chart = document.getElementById("chart");
  // Drawn at the element's own width, so labels keep their size on a phone.
  const W = Math.max(280, Math.round(chart.clientWidth) || 640);
  const H = 180;
  const pad = { l: 8, r: 44, t: 12, b: 22 };
  const now = Date.now();
  const start = now - CHART_MINUTES * 60 * 1000;
  const x = (t) => pad.l + ((t - start) / (now - start)) * (W - pad.l - pad.r);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });
  root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, stroke: "#d0d7de" }));
  const step = W < 480 ? 5 : 2; // minutes between axis labels: fewer when narrow
  for (let m = 0; m <= CHART_MINUTES; m += step) {
    const label = svg("text", { x: x(now - m * 60000), y: H - 6, "text-anchor": m === CHART_MINUTES ? "start" : "middle", "font-size": 11, fill: "#57606a" });
    label.textContent = m === 0 ? "now" : `−${m} min`;
    root.append(label);
  }
  const summary = [];
  const tagged = []; // label positions, nudged apart so equal values stay readable
  for (const key of ["taken", "registered", "viewers"]) {
    const samples = history.filter((s) => s[key] !== null && s[key] !== undefined);
    if (samples.length === 0) continue;
    const peak = Math.max(1, ...samples.map((s) => s[key]));
    const y = (v) => H - pad.b - (v / peak) * (H - pad.t - pad.b);
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`);
    const last = samples[samples.length - 1];
    points.push(`${x(now).toFixed(1)},${y(last[key]).toFixed(1)}`);
    root.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: COLORS[key], "stroke-width": 2.5, "stroke-linejoin": "round" }));
    let tagY = Math.max(pad.t + 4, y(last[key]) + 4);
    while (tagged.some((other) => Math.abs(other - tagY) < 12)) tagY += 12;
    tagged.push(tagY);
    const tag = svg("text", { x: W - pad.r + 4, y: tagY, "font-size": 11, fill: COLORS[key] });
    tag.textContent = String(last[key]);
    root.append(tag);
    summary.push(`${key === "taken" ? "tickets taken" : key} ${last[key]}`);
  }
  chart.replaceChildren(root);
  chart.setAttribute("aria-label", `Last ${CHART_MINUTES} minutes; now: ${summary.join(", ") || "no data yet"}.`);
}

function render(snap) {
  const first = latest === null;
  latest = snap;
  const tiles = document.getElementById("tiles");
  const registered = snap.registrations ? snap.registrations.registered : 0;
  const total = snap.event_total;
  setText(tiles, "attending", total ? total.registered + total.tickets : registered);
  setText(tiles, "registered", registered);
  setText(tiles, "max-attendees", dash(snap.max_attendees));
  setText(tiles, "viewers", dash(snap.viewers && snap.viewers.viewers));
  setText(tiles, "viewer-limit", dash(snap.viewers && snap.viewers.limit));
  setText(tiles, "viewers-held", held(snap.viewers && snap.viewers.in_grace));
  setText(tiles, "sold", snap.tickets.sold);
  setText(tiles, "reserved", snap.tickets.reserved);
  setText(tiles, "available", snap.tickets.available);
  setText(tiles, "total", snap.tickets.total);
  renderTicketTable(snap);
  renderLists(snap);
  renderWaitingRoom(snap);
  const updated = document.getElementById("updated");
  updated.dateTime = snap.taken_at;
  updated.textContent = new Date(snap.taken_at).toLocaleTimeString();
  if (first) {
    record();
    renderChart();
  }
}

function health(ok, how) {
  const live = document.getElementById("live");
  live.dataset.state = ok ? "live" : "stale";
  live.dataset.mode = ok ? how : "";
  document.getElementById("live-label").textContent = ok
    ? (how === "push" ? "Live (push)" : "Live (polling)")
    : "Connection lost, retrying; last";
}

watchCapacity(eventId, SAMPLE_MS, render, health);
window.addEventListener("resize", () => renderChart());
setInterval(() => {
  record();
  renderChart();
  if (latest) renderTicketTable(latest);
}, SAMPLE_MS);
