// The attendee event page: keep availability and buttons true to the latest snapshot, and
// act through the REST API, showing refusals (e.g. someone took the last seat) as they are.
import {
  adoptTokenFromUrl, api, bindTokenForm, cardParts, getToken, setText, watchCapacity,
} from "./live.js";
import { livePlaces } from "./places.js";
import { queuePass } from "./queue.js";

const main = document.querySelector("main[data-page=event]");
const eventId = main.dataset.eventId;
const statusBox = document.getElementById("status");
const errorBox = document.getElementById("error");
const busy = new Set(); // ids with a request in flight keep their buttons disabled
const mine = { registration: null, rsvps: new Map(), queues: new Map() };
let latest = null;

function say(message) {
  errorBox.hidden = true;
  statusBox.textContent = message;
}

function complain(message) {
  statusBox.textContent = "";
  errorBox.textContent = message;
  errorBox.hidden = false;
}

/** People against max_attendees (registrations plus tickets), else tickets against total. */
function indicatorFigures(snap) {
  const total = snap.event_total;
  const reg = snap.registrations;
  if (total && total.max_attendees !== null) {
    const breakdown = total.tickets ? `${total.registered} registered · ${total.tickets} with tickets` : "";
    return [total.registered + total.tickets, total.max_attendees,
      total.tickets ? "attending" : "registered", breakdown];
  }
  if (reg && reg.max_attendees !== null) return [reg.registered, reg.max_attendees, "registered", ""];
  return [snap.tickets.sold + snap.tickets.reserved, snap.tickets.total, "tickets taken", ""];
}

function renderIndicator(snap) {
  const [taken, limit, noun, breakdown] = indicatorFigures(snap);
  setText(main, "taken", taken);
  setText(main, "limit", limit);
  setText(main, "noun", noun);
  setText(main, "breakdown", breakdown);
  const bar = document.getElementById("capacity-bar");
  bar.max = Math.max(limit, 1);
  bar.value = taken;
}

function renderRegistration(snap) {
  const card = document.getElementById("registration");
  const reg = snap.registrations;
  if (!card || !reg) return;
  setText(card, "registration-left", reg.remaining ?? "");
  const active = mine.registration && mine.registration.status === "active";
  const register = document.getElementById("register");
  const cancel = document.getElementById("cancel-registration");
  register.hidden = Boolean(active);
  cancel.hidden = !active;
  register.disabled = reg.is_full || busy.has("registration");
  cancel.disabled = busy.has("registration");
  if (!busy.has("registration")) register.textContent = reg.is_full ? "Full" : "Register";
  const note = document.getElementById("my-registration");
  note.hidden = !active;
  note.textContent = active ? `You are registered (party of ${mine.registration.party_size}).` : "";
}

function renderTicketType(tt) {
  const card = main.querySelector(`li[data-ticket-type-id="${tt.id}"]`);
  if (!card) return;
  setText(card, "available", tt.quantity_available);
  card.classList.toggle("is-full", tt.is_sold_out);
  const button = card.querySelector("button[type=submit]");
  const select = card.querySelector("select");
  // Stock offered to this caller from the waitlist is held for them: they may buy it.
  const entry = mine.queues.get(tt.id);
  const offered = entry && entry.status === "offered" ? entry.offered_quantity || entry.quantity : 0;
  const soldOut = tt.is_sold_out && !offered;
  button.disabled = soldOut || busy.has(tt.id);
  if (!busy.has(tt.id)) button.textContent = soldOut ? "Sold out" : "Buy";
  select.disabled = soldOut;
  const queue = card.querySelector('[data-action="queue"]');
  const waiting = entry && entry.status === "waiting";
  queue.hidden = !tt.is_sold_out || Boolean(waiting) || Boolean(offered);
  queue.disabled = busy.has(`queue:${tt.id}`);
  const note = card.querySelector('[data-field="queue"]');
  note.hidden = !(waiting || offered);
  note.textContent = waiting ? `You are number ${entry.position} in the queue.`
    : offered ? `${offered} held for you until ${clock(entry.offer_expires_at)}: buy now to take them.` : "";
  const room = offered || tt.quantity_available;
  const limit = Math.max(1, Math.min(room, tt.max_per_order || Infinity));
  if (select.options.length !== limit) {
    const chosen = Math.min(Number(select.value) || 1, limit);
    select.replaceChildren(
      ...Array.from({ length: limit }, (_, i) => new Option(String(i + 1), String(i + 1))),
    );
    select.value = String(chosen);
  }
}

function sessionCard(s) {
  const li = document.createElement("li");
  li.className = "card session";
  li.dataset.sessionId = s.id;
  const parts = cardParts("h3", `session-${s.id}`, s.title, ["seats", "waitlist"]);
  for (const [action, label, cls] of [["rsvp", "RSVP", ""], ["leave", "Leave", "secondary"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.action = action;
    b.textContent = label;
    if (cls) b.className = cls;
    b.setAttribute("aria-describedby", parts.heading.id);
    parts.actions.append(b);
  }
  li.append(parts.heading, parts.availability, parts.mine, parts.actions);
  return li;
}

const seen = new Map(); // session id → last figures, to notice a queue moving

/** A waitlisted caller's position moves (or turns into a seat) as others leave: re-ask. */
function followQueue(s) {
  const figures = `${s.current_attendance}/${s.waitlist_length}`;
  const before = seen.get(s.id);
  seen.set(s.id, figures);
  const rsvp = mine.rsvps.get(s.id);
  if (before === undefined || before === figures || !rsvp || rsvp.status !== "waitlisted") return;
  api("GET", `/sessions/${encodeURIComponent(s.id)}/rsvp`)
    .then((fresh) => {
      mine.rsvps.set(s.id, fresh);
      if (fresh.status === "confirmed") say(`A seat freed up: you now have a seat at “${s.title}”.`);
      rerender();
    })
    .catch(() => {});
}

function renderSession(s) {
  followQueue(s);
  const list = document.getElementById("session-list");
  let card = list.querySelector(`li[data-session-id="${s.id}"]`);
  if (!card) {
    card = sessionCard(s);
    list.append(card);
  }
  card.classList.toggle("is-full", s.is_full);
  setText(card, "seats", `${s.remaining} of ${s.max_participants} seats left`);
  setText(card, "waitlist", s.waitlist_length ? ` · ${s.waitlist_length} waiting` : "");
  const rsvp = mine.rsvps.get(s.id);
  const status = rsvp ? rsvp.status : "none";
  const note = card.querySelector('[data-field="mine"]');
  note.hidden = status === "none";
  note.textContent = status === "confirmed" ? "You have a seat."
    : status === "waitlisted" ? `You are number ${rsvp.position} on the waitlist.` : "";
  const join = card.querySelector('[data-action="rsvp"]');
  const leave = card.querySelector('[data-action="leave"]');
  join.hidden = status !== "none";
  leave.hidden = status === "none";
  leave.textContent = status === "waitlisted" ? "Leave waitlist" : "Leave";
  const closed = s.is_full && !s.waitlist_enabled;
  join.disabled = closed || busy.has(s.id);
  leave.disabled = busy.has(s.id);
  if (!busy.has(s.id)) {
    join.textContent = !s.is_full ? "RSVP" : s.waitlist_enabled ? "Full — join waitlist" : "Full";
  }
}

function render(snap) {
  latest = snap;
  renderIndicator(snap);
  renderRegistration(snap);
  for (const tt of snap.tickets.ticket_types) renderTicketType(tt);
  const sessions = snap.sessions || [];
  document.getElementById("sessions").hidden = sessions.length === 0;
  for (const s of sessions) renderSession(s);
  places.render(snap);
}

// The stream, booths, breakout rooms and huddles (places.js); `needToken` is hoisted.
const places = livePlaces(eventId, { say, complain, needToken, refresh: () => watcher.refresh() });
const watcher = watchCapacity(eventId, Number(main.dataset.pollMs) || 2000, render);

function rerender() {
  if (latest) render(latest);
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function nameOf(ticketTypeId) {
  const tt = latest && latest.tickets.ticket_types.find((t) => t.id === ticketTypeId);
  return tt ? tt.name : ticketTypeId;
}

function needToken() {
  if (getToken()) return false;
  complain("Paste your access token above first: it says who you are.");
  document.getElementById("token-input").focus();
  return true;
}

/** Run one action: its buttons stay disabled meanwhile; a refusal's detail is shown as is. */
async function act(key, button, busyLabel, work) {
  if (needToken()) return;
  busy.add(key);
  button.disabled = true;
  const label = button.textContent;
  button.textContent = busyLabel;
  try {
    say(await work());
  } catch (error) {
    complain(error.message);
  } finally {
    busy.delete(key);
    button.textContent = label;
    rerender();
    watcher.refresh();
  }
}

for (const form of main.querySelectorAll("form.buy")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ticketTypeId = form.dataset.ticketTypeId;
    const quantity = Number(form.querySelector("select").value);
    act(ticketTypeId, form.querySelector("button[type=submit]"), "Buying…", async () => {
      const order = await api("POST", "/orders", {
        event_id: eventId,
        items: [{ ticket_type_id: ticketTypeId, quantity }],
        queue_pass: queuePass() || undefined, // behind a waiting room (queue.js)
      });
      loadOrders();
      if (mine.queues.has(ticketTypeId)) loadQueues();
      const until = new Date(order.expires_at)
        .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      return `Held ${quantity} × ${nameOf(ticketTypeId)} until ${until} (order ${order.id}). ` +
        "Complete payment to keep them.";
    });
  });
}

const registerButton = document.getElementById("register");
if (registerButton) {
  registerButton.addEventListener("click", () => act("registration", registerButton, "Registering…", async () => {
    mine.registration = await api("POST", `/events/${encodeURIComponent(eventId)}/registrations`, {});
    return "You are registered.";
  }));
  const cancelButton = document.getElementById("cancel-registration");
  cancelButton.addEventListener("click", () => act("registration", cancelButton, "Cancelling…", async () => {
    mine.registration = await api("DELETE", `/events/${encodeURIComponent(eventId)}/registrations/me`);
    await loadRsvps();
    return "Your registration is cancelled; your place is free for someone else.";
  }));
}

document.getElementById("ticket-types").addEventListener("click", (event) => {
  const button = event.target.closest('button[data-action="queue"]');
  if (!button) return;
  const ticketTypeId = button.closest("li[data-ticket-type-id]").dataset.ticketTypeId;
  act(`queue:${ticketTypeId}`, button, "Joining…", async () => {
    const entry = await api("POST", `/ticket-types/${encodeURIComponent(ticketTypeId)}/waitlist`, { quantity: 1 });
    mine.queues.set(ticketTypeId, entry);
    return entry.status === "offered"
      ? `${nameOf(ticketTypeId)} is held for you until ${clock(entry.offer_expires_at)}: buy now.`
      : `You are number ${entry.position} in the queue for ${nameOf(ticketTypeId)}.`;
  });
});

document.getElementById("session-list").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const card = button.closest("li[data-session-id]");
  const sessionId = card.dataset.sessionId;
  const title = card.querySelector("h3").textContent;
  const path = `/sessions/${encodeURIComponent(sessionId)}/rsvp`;
  if (button.dataset.action === "rsvp") {
    act(sessionId, button, "Saving…", async () => {
      const rsvp = await api("POST", path);
      mine.rsvps.set(sessionId, rsvp);
      return rsvp.status === "confirmed" ? `You have a seat at “${title}”.`
        : `“${title}” is full: you are number ${rsvp.position} on the waitlist.`;
    });
  } else {
    act(sessionId, button, "Leaving…", async () => {
      mine.rsvps.set(sessionId, await api("DELETE", path));
      return `You left “${title}”.`;
    });
  }
});

async function cancel(orderId, button) {
  await act(orderId, button, "Cancelling…", async () => {
    await api("POST", `/orders/${encodeURIComponent(orderId)}/cancel`);
    loadOrders();
    return `Order ${orderId} cancelled; its tickets are back on sale.`;
  });
}

async function loadOrders() {
  const section = document.getElementById("my-orders");
  const list = section.querySelector("ul");
  if (!getToken()) {
    section.hidden = true;
    return;
  }
  let orders;
  try {
    orders = await api("GET", `/orders?event_id=${encodeURIComponent(eventId)}`);
  } catch (error) {
    complain(error.message);
    return;
  }
  list.replaceChildren(...orders.map((order) => {
    const li = document.createElement("li");
    const items = order.items.map((i) => `${i.quantity} × ${nameOf(i.ticket_type_id)}`).join(", ");
    const badge = document.createElement("span");
    badge.className = `badge ${order.status === "paid" ? "ok" : order.status === "pending" ? "warn" : ""}`;
    badge.textContent = order.status;
    li.append(badge, ` ${items} `);
    if (order.status === "pending") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Cancel";
      button.setAttribute("aria-label", `Cancel order of ${items}`);
      button.addEventListener("click", () => cancel(order.id, button));
      li.append(button);
    }
    return li;
  }));
  section.hidden = orders.length === 0;
}

/** What the caller holds here; a 404 just means "nothing yet". */
async function loadMine() {
  mine.registration = null;
  mine.rsvps.clear();
  if (!getToken()) {
    rerender();
    return;
  }
  if (document.getElementById("registration")) {
    try {
      mine.registration = await api("GET", `/events/${encodeURIComponent(eventId)}/registrations/me`);
    } catch {
      mine.registration = null;
    }
  }
  await loadRsvps();
}

async function loadRsvps() {
  const cards = main.querySelectorAll("li[data-session-id]");
  await Promise.all(Array.from(cards, async (card) => {
    const id = card.dataset.sessionId;
    try {
      mine.rsvps.set(id, await api("GET", `/sessions/${encodeURIComponent(id)}/rsvp`));
    } catch {
      mine.rsvps.delete(id);
    }
  }));
  rerender();
}

/** The caller's live places in ticket queues: waiting (with position) or offered. */
async function loadQueues() {
  if (!getToken()) {
    mine.queues.clear();
    return;
  }
  try {
    const entries = await api("GET", `/events/${encodeURIComponent(eventId)}/waitlist-entries/me`);
    const before = new Map(mine.queues);
    mine.queues.clear();
    for (const e of entries) {
      if (e.ticket_type_id && (e.status === "waiting" || e.status === "offered")) {
        mine.queues.set(e.ticket_type_id, e);
        const was = before.get(e.ticket_type_id);
        if (e.status === "offered" && (!was || was.status !== "offered")) {
          say(`${nameOf(e.ticket_type_id)} is held for you until ${clock(e.offer_expires_at)}: buy now.`);
        }
      }
    }
  } catch {
    /* keep what we knew */
  }
  rerender();
}

// A waitlist position moves when others leave, which a snapshot does not always reveal
// (a leave and a promotion can cancel out in the counts): ask about one's own places.
const QUEUE_CHECK_MS = 5000;
setInterval(() => {
  if (mine.queues.size) loadQueues();
  for (const [id, rsvp] of mine.rsvps) {
    if (rsvp.status !== "waitlisted") continue;
    api("GET", `/sessions/${encodeURIComponent(id)}/rsvp`)
      .then((fresh) => {
        mine.rsvps.set(id, fresh);
        if (fresh.status === "confirmed") say("A seat freed up: you now have a seat.");
        rerender();
      })
      .catch(() => {});
  }
}, QUEUE_CHECK_MS);

adoptTokenFromUrl();
bindTokenForm((claims) => {
  loadOrders();
  loadMine();
  loadQueues();
  places.signedIn(claims);
});
