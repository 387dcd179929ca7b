// The attendee event page: keep availability and buttons true to the latest snapshot, and
// act through the REST API, showing refusals (e.g. someone took the last seat) as they are.
import {
  adoptTokenFromUrl, api, bindTokenForm, getToken, setText, watchCapacity,
} from "./live.js";

const main = document.querySelector("main[data-page=event]");
const eventId = main.dataset.eventId;
const statusBox = document.getElementById("status");
const errorBox = document.getElementById("error");
const busy = new Set(); // ticket types with a request in flight keep their button disabled
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

function renderIndicator(snap) {
  const reg = snap.sections && snap.sections.registrations;
  const byRegistration = reg && snap.max_attendees !== null;
  const taken = byRegistration ? reg.registered : snap.tickets.sold + snap.tickets.reserved;
  const limit = byRegistration ? snap.max_attendees : snap.tickets.total;
  setText(main, "taken", taken);
  setText(main, "limit", limit);
  const bar = document.getElementById("capacity-bar");
  bar.max = Math.max(limit, 1);
  bar.value = taken;
}

function renderTicketType(tt) {
  const card = main.querySelector(`li[data-ticket-type-id="${tt.id}"]`);
  if (!card) return;
  setText(card, "available", tt.quantity_available);
  card.classList.toggle("is-full", tt.is_sold_out);
  const button = card.querySelector("button[type=submit]");
  const select = card.querySelector("select");
  const soldOut = tt.is_sold_out;
  button.disabled = soldOut || busy.has(tt.id);
  if (!busy.has(tt.id)) button.textContent = soldOut ? "Sold out" : "Buy";
  select.disabled = soldOut;
  const limit = Math.max(1, Math.min(tt.quantity_available, tt.max_per_order || Infinity));
  if (select.options.length !== limit) {
    const chosen = Math.min(Number(select.value) || 1, limit);
    select.replaceChildren(
      ...Array.from({ length: limit }, (_, i) => new Option(String(i + 1), String(i + 1))),
    );
    select.value = String(chosen);
  }
}

function render(snap) {
  latest = snap;
  renderIndicator(snap);
  for (const tt of snap.tickets.ticket_types) renderTicketType(tt);
}

const watcher = watchCapacity(eventId, Number(main.dataset.pollMs) || 2000, render);

function nameOf(ticketTypeId) {
  const tt = latest && latest.tickets.ticket_types.find((t) => t.id === ticketTypeId);
  return tt ? tt.name : ticketTypeId;
}

function needToken() {
  if (getToken()) return false;
  complain("Paste your access token above first: it says who is buying.");
  document.getElementById("token-input").focus();
  return true;
}

async function buy(form) {
  const ticketTypeId = form.dataset.ticketTypeId;
  const quantity = Number(form.querySelector("select").value);
  const button = form.querySelector("button[type=submit]");
  if (needToken()) return;
  busy.add(ticketTypeId);
  button.disabled = true;
  button.textContent = "Buying…";
  try {
    const order = await api("POST", "/orders", {
      event_id: eventId,
      items: [{ ticket_type_id: ticketTypeId, quantity }],
    });
    const until = new Date(order.expires_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    say(`Held ${quantity} × ${nameOf(ticketTypeId)} until ${until} (order ${order.id}). ` +
      "Complete payment to keep them.");
    loadOrders();
  } catch (error) {
    complain(error.message);
  } finally {
    busy.delete(ticketTypeId);
    button.textContent = "Buy";
    if (latest) render(latest);
    watcher.refresh();
  }
}

for (const form of main.querySelectorAll("form.buy")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    buy(form);
  });
}

async function cancel(orderId, button) {
  button.disabled = true;
  try {
    await api("POST", `/orders/${encodeURIComponent(orderId)}/cancel`);
    say(`Order ${orderId} cancelled; its tickets are back on sale.`);
  } catch (error) {
    complain(error.message);
  } finally {
    loadOrders();
    watcher.refresh();
  }
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
  list.className = "orders";
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

adoptTokenFromUrl();
bindTokenForm(() => loadOrders());
