// The waiting room on the attendee page: join the queue, watch the place count down over
// `WS /ws/queue/{ticket}` (the ticket is signed, so the socket needs no token), and once
// admitted keep the pass for this tab and open the shop. Orders carry the pass
// (`queuePass`, used by event.js); a sold-out room shows the waitlist instead.
import { ApiError, api, getToken } from "./live.js";

const section = document.getElementById("waiting-room");
const main = document.querySelector("main[data-page=event]");
const eventId = main ? main.dataset.eventId : "";
const TICKET_KEY = `headcount.queueTicket.${eventId}`;
const PASS_KEY = `headcount.queuePass.${eventId}`;
const RETRY_MS = 2000;

/** The pass this tab holds for the event's waiting room, if any. */
export function queuePass() {
  return sessionStorage.getItem(PASS_KEY);
}

function field(name) {
  return section.querySelector(`[data-field="${name}"]`);
}

function openShop(open) {
  const shop = document.getElementById("tickets");
  if (shop) shop.hidden = !open;
}

function wait(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `about ${seconds} s`;
  return `about ${Math.round(seconds / 60)} min`;
}

function show(ticket) {
  const joinButton = document.getElementById("join-queue");
  const state = field("queue-state");
  const position = field("queue-position");
  joinButton.hidden = ticket.state === "waiting" || ticket.state === "admitted";
  section.dataset.state = ticket.state;
  if (ticket.state === "waiting") {
    position.textContent = String(ticket.position);
    state.textContent = ticket.people_ahead === 0
      ? `You are next. ${wait(ticket.eta_seconds)}`
      : `${ticket.people_ahead} ahead of you, ${wait(ticket.eta_seconds)}.`;
    openShop(false);
  } else if (ticket.state === "admitted") {
    sessionStorage.setItem(PASS_KEY, ticket.queue_pass);
    position.textContent = "–";
    const until = new Date(ticket.pass_expires_at)
      .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    state.textContent = `It is your turn: the shop is open for you (stay active; idle until ${until}).`;
    openShop(true);
  } else if (ticket.state === "sold_out") {
    position.textContent = "–";
    state.textContent = "Sold out. Join the waitlist below: if tickets come back, the queue resumes in the same order.";
    openShop(true);
  } else {
    sessionStorage.removeItem(PASS_KEY);
    sessionStorage.removeItem(TICKET_KEY);
    position.textContent = "–";
    state.textContent = "Your turn has ended. Join the queue again to buy more.";
  }
}

function follow(ticket) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(
    `${scheme}://${window.location.host}/ws/queue/${encodeURIComponent(ticket)}`,
  );
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "ticket") show(data.ticket);
  });
  socket.addEventListener("close", (closed) => {
    // 1000: the ticket is gone; 4404: it no longer exists (e.g. the queue was reset).
    if (closed.code === 4404) {
      sessionStorage.removeItem(TICKET_KEY);
      show({ state: "gone" });
    } else if (closed.code !== 1000) {
      setTimeout(() => follow(ticket), RETRY_MS);
    }
  });
}

async function join(button) {
  const state = field("queue-state");
  if (!getToken()) {
    state.textContent = "Paste your access token above first.";
    return;
  }
  button.disabled = true;
  try {
    const ticket = await api("POST", `/events/${encodeURIComponent(eventId)}/queue`);
    sessionStorage.setItem(TICKET_KEY, ticket.ticket);
    show(ticket);
    follow(ticket.ticket);
  } catch (exc) {
    state.textContent = exc instanceof ApiError ? exc.message : String(exc);
  } finally {
    button.disabled = false;
  }
}

if (section) {
  const button = document.getElementById("join-queue");
  button.addEventListener("click", () => join(button));
  const known = sessionStorage.getItem(TICKET_KEY);
  if (known) follow(known);
}
