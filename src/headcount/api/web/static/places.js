// Joining the event's live places from the attendee page: the stream (over its WebSocket,
// pinging to keep the place), booths and breakout rooms (REST leases, renewed here), and
// huddles (durable membership). What each kind is, which snapshot fields it reads and which
// paths it calls come from the server (#place-kinds, built from the registry).
//
// A place joined here is remembered in this tab (sessionStorage), and a reload or a lost
// connection joins again at once: within the server's grace the place is given back, even
// when the space is full. Only "Leave" gives it up at once.
//
// A full booth or room offers "Wait in line" (`?queue=1`): the page keeps asking while the
// server answers 202 with its place in line, shows the position, and is in as soon as the
// ask at the head of the line finds a place free. A full stream's line is its socket's
// (`?queue=1` on it): positions are pushed, then "joined". Closing the page gives the
// place up.
import { ApiError, api, cardParts, getToken, onMessage, setText } from "./live.js";

const STORE = "headcount.places.";

/** Same wording as _macros.html place_figures(). */
function figures(view, kind) {
  const count = view[kind.count];
  const limit = view[kind.limit];
  const heads = count === null || count === undefined ? "count unavailable"
    : limit === null || limit === undefined ? `${count} ${kind.count}`
      : `${count} of ${limit} ${kind.count}`;
  const held = view.in_grace ? ` · ${view.in_grace} held for reconnecting` : "";
  return [heads, held];
}

const MINE = {
  stream: "You are watching.",
  lease: "You are in.",
  membership: "You are a member.",
};

function inLine(entry) {
  const ahead = entry.position - 1;
  const who = ahead === 0 ? "You are next" : `${ahead} ${ahead === 1 ? "person" : "people"} ahead of you`;
  return `In line: ${who}. Keep this page open to keep your place.`;
}

export function livePlaces(eventId, { say, complain, needToken, refresh }) {
  const kinds = JSON.parse(document.getElementById("place-kinds").textContent);
  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  const joined = new Map(); // "kind:id" → { kind, id, state, lease, socket, timer }
  const busy = new Set();
  const views = new Map(); // "kind:id" → latest view
  const storeKey = STORE + eventId;
  let latest = null;

  const keyOf = (kind, id) => `${kind}:${id}`;
  const pathOf = (template, id) => template.replace("{id}", encodeURIComponent(id));
  const nameOf = (kind, id) => {
    const card = cardOf(kind, id);
    return card ? card.querySelector("h4").textContent : id;
  };

  function remember() {
    // A place in line is not kept over a reload: the line wants this page asking.
    const live = [...joined.values()].filter(
      (e) => byKind.get(e.kind).mode !== "membership" && e.state !== "queued");
    sessionStorage.setItem(storeKey, JSON.stringify(live.map((e) => [e.kind, e.id])));
  }

  function cardOf(kind, id) {
    return document.querySelector(`li.place[data-kind="${kind}"][data-place-id="${CSS.escape(id)}"]`);
  }

  function newCard(kind, view, id) {
    const li = document.createElement("li");
    li.className = "card place";
    li.dataset.kind = kind.kind;
    li.dataset.placeId = id;
    const title = kind.single ? kind.title : view.name;
    const parts = cardParts("h4", `place-${kind.kind}-${id}`, title, ["heads", "held"]);
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = "place";
    button.setAttribute("aria-describedby", parts.heading.id);
    parts.actions.append(button);
    li.append(parts.heading, parts.availability, parts.mine, parts.actions);
    return li;
  }

  /** A full lease place's second button: wait in line (added once, shown only when full). */
  function lineButton(card, kind) {
    let line = card.querySelector('button[data-action="line"]');
    if (!line && (kind.mode === "lease" || kind.mode === "stream")) {
      line = document.createElement("button");
      line.type = "button";
      line.dataset.action = "line";
      line.textContent = "Wait in line";
      line.setAttribute("aria-describedby", card.querySelector("h4").id);
      line.hidden = true;
      card.querySelector('button[data-action="place"]').after(line);
    }
    return line;
  }

  /** Same label as _macros.html place_button(), plus what only the page knows: mine. */
  function renderCard(kind, view, id) {
    const key = keyOf(kind.kind, id);
    views.set(key, view);
    let card = cardOf(kind.kind, id);
    if (!card) {
      card = newCard(kind, view, id);
      document.querySelector(`[data-kind-list="${kind.kind}"]`).append(card);
    }
    const [heads, held] = figures(view, kind);
    setText(card, "heads", heads);
    setText(card, "held", held);
    const entry = joined.get(key);
    const closed = view.status === "closed";
    card.classList.toggle("is-full", Boolean(view.is_full) && !entry);
    card.classList.toggle("is-mine", Boolean(entry));
    const note = card.querySelector('[data-field="mine"]');
    note.hidden = !entry;
    note.textContent = !entry ? ""
      : entry.state === "reconnecting" ? "Connection lost: reconnecting… your place is kept for you."
        : entry.state === "joining" ? "Joining…"
          : entry.state === "queued" ? inLine(entry) : MINE[kind.mode];
    const button = card.querySelector('button[data-action="place"]');
    const line = lineButton(card, kind);
    if (line) line.hidden = Boolean(entry) || closed || !view.is_full;
    // While a request is in flight the button says so and ignores presses, but stays
    // enabled: disabling it would throw keyboard focus off it.
    button.setAttribute("aria-disabled", String(busy.has(key)));
    if (busy.has(key)) return;
    if (entry) {
      button.textContent = entry.state === "queued" ? "Leave the line" : "Leave";
      button.disabled = false;
    } else {
      button.textContent = closed ? "Closed" : view.is_full ? "Full" : "Join";
      button.disabled = closed || Boolean(view.is_full);
    }
  }

  /** A refusal carries the count and limit the server saw: show the place full now, not at
   * the next snapshot (which a lost race may arrive ahead of, or a frozen feed never sends). */
  function learn(kindName, id, problem) {
    const kind = byKind.get(kindName);
    if (!(kind.count in problem) || !(kind.limit in problem)) return;
    // The refusal's count is every place taken, those held in grace included.
    const view = {
      ...(views.get(keyOf(kindName, id)) || {}),
      [kind.count]: problem[kind.count],
      [kind.limit]: problem[kind.limit],
      in_grace: 0,
      is_full: true,
    };
    renderCard(kind, view, id);
  }

  function render(snap) {
    latest = snap;
    for (const kind of kinds) {
      const value = snap[kind.section];
      const list = kind.single ? (value ? [value] : []) : value || [];
      const section = document.querySelector(`[data-kind-section="${kind.kind}"]`);
      if (section) section.hidden = list.length === 0;
      for (const view of list) renderCard(kind, view, kind.single ? eventId : view.id);
    }
  }

  function rerender() {
    if (latest) render(latest);
  }

  // --- the stream: one WebSocket, pinged well within the lease's TTL ---------------------

  function streamUrl(kind, id, token, line) {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const path = pathOf(kind.join, id);
    const queue = line ? "&queue=1" : "";
    return `${scheme}://${window.location.host}${path}?token=${encodeURIComponent(token)}${queue}`;
  }

  /** Resolves with the "joined" message (or, waiting in line, with the first "queued" one:
   * the "joined" that follows makes the entry "in"); rejects with the server's refusal. */
  function openStream(entry, { line = false } = {}) {
    const kind = byKind.get(entry.kind);
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new WebSocket(streamUrl(kind, entry.id, entry.token, line));
      } catch {
        reject(new ApiError(0, { detail: "The stream cannot be reached from this browser." }));
        return;
      }
      entry.socket = socket;
      let admitted = false;
      let refusal = null;
      onMessage(socket, (message) => {
        if (message.type === "queued") {
          entry.state = "queued";
          entry.position = message.position;
          rerender();
          resolve(message);
        } else if (message.type === "joined") {
          if (entry.state === "queued") {
            entry.state = "in";
            remember();
            say("A place freed up: you are watching the stream.");
            rerender();
          }
          admitted = true;
          entry.lease = message.lease;
          clearInterval(entry.timer);
          const every = Math.max(1, Math.min(10, message.lease.ttl_seconds / 3)) * 1000;
          entry.timer = setInterval(() => {
            if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
          }, every);
          resolve(message);
        } else if (message.type === "error") {
          refusal = message;
          if (admitted && message.code !== "lease_expired") complain(message.detail);
        }
      });
      socket.addEventListener("close", () => {
        clearInterval(entry.timer);
        if (entry.socket === socket) entry.socket = null;
        if (!admitted && entry.state === "queued" && !entry.leaving) {
          forget(entry);  // the line wants this socket open: the place in it is gone
          complain("The connection dropped while you waited: your place in line is gone.");
        } else if (!admitted) {
          reject(new ApiError(0, refusal || { detail: "The stream connection closed; try again." }));
        } else if (joined.get(keyOf(entry.kind, entry.id)) === entry && !entry.leaving) {
          reconnect(entry);
        }
      });
    });
  }

  /** The socket is gone but the viewer did not leave: join again while the place is kept. */
  async function reconnect(entry) {
    entry.state = "reconnecting";
    rerender();
    const grace = entry.lease ? entry.lease.grace_seconds : 0;
    const giveUp = Date.now() + Math.max(grace, 1) * 1000 + 5000;
    let wait = 250;
    while (joined.get(keyOf(entry.kind, entry.id)) === entry && !entry.leaving) {
      await new Promise((done) => setTimeout(done, wait));
      try {
        const hello = await openStream(entry);
        entry.state = "in";
        say(hello.lease.place === "resumed" ? "Reconnected: your place in the stream was kept for you."
          : "Reconnected to the stream.");
        rerender();
        return;
      } catch (error) {
        const code = error.code;
        if (code === "viewer_limit_reached" || code === "unauthorized" || code === "not_found"
          || Date.now() > giveUp) {
          forget(entry);
          complain(error.message);
          return;
        }
        wait = Math.min(wait * 2, 4000);
      }
    }
  }

  // --- booths and rooms: a REST lease, renewed well within its TTL ------------------------

  function keepLease(entry) {
    const kind = byKind.get(entry.kind);
    clearInterval(entry.timer);
    const every = Math.max(1, Math.min(10, entry.lease.ttl_seconds / 3)) * 1000;
    entry.timer = setInterval(async () => {
      if (!entry.lease || entry.renewing) return;
      entry.renewing = true;
      try {
        const beat = `/leases/${encodeURIComponent(entry.lease.lease_id)}/heartbeat`;
        entry.lease = await api("POST", beat, undefined, entry.token);
        if (entry.state === "reconnecting") {
          entry.state = "in";
          rerender();
        }
      } catch (error) {
        if (error.status === 410) {
          // The lease ran out (a sleeping laptop, a lost network): the place is kept for
          // its grace, and joining again takes it back.
          try {
            entry.lease = await api("POST", pathOf(kind.join, entry.id), undefined, entry.token);
            entry.state = "in";
          } catch (again) {
            forget(entry);
            complain(again.message);
          }
        } else if (error.status === 404) {
          forget(entry);
        } else {
          entry.state = "reconnecting";  // unreachable for now: keep trying
        }
        rerender();
      } finally {
        entry.renewing = false;
      }
    }, every);
  }

  /** Ask again while in line (each ask keeps the place) until the lease comes. */
  function keepAsking(entry, place) {
    const kind = byKind.get(entry.kind);
    entry.state = "queued";
    entry.position = place.position;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(async () => {
      if (joined.get(keyOf(entry.kind, entry.id)) !== entry || entry.leaving) return;
      try {
        const found = await api("POST", `${pathOf(kind.join, entry.id)}?queue=1`, undefined, entry.token);
        if (found.status === "queued") {
          keepAsking(entry, found);
        } else {
          entry.lease = found;
          entry.state = "in";
          remember();
          keepLease(entry);
          say(`A place freed up: you joined “${nameOf(entry.kind, entry.id)}”.`);
        }
      } catch (error) {
        if (error.status === 0) {
          keepAsking(entry, { position: entry.position, retry_after_seconds: 2 });
          return;
        }
        forget(entry);
        complain(error.message);
      }
      rerender();
    }, Math.max(0.25, place.retry_after_seconds) * 1000);
  }

  // --- joining and leaving, for every kind ---------------------------------------------------

  function forget(entry) {
    clearInterval(entry.timer);
    clearTimeout(entry.timer);
    if (joined.get(keyOf(entry.kind, entry.id)) === entry) joined.delete(keyOf(entry.kind, entry.id));
    remember();
    rerender();
  }

  async function join(kindName, id, { quiet = false, line = false } = {}) {
    const kind = byKind.get(kindName);
    const entry = {
      kind: kindName, id, state: "joining", lease: null, socket: null, timer: null, token: getToken(),
    };
    const key = keyOf(kindName, id);
    joined.set(key, entry);
    rerender();
    try {
      let place = "new";
      if (kind.mode === "stream") {
        const hello = await openStream(entry, { line });
        if (hello.type === "queued") {
          say("You are in line for the stream.");
          return;
        }
        place = hello.lease.place;
      } else if (kind.mode === "lease" && line) {
        const found = await api("POST", `${pathOf(kind.join, id)}?queue=1`);
        if (found.status === "queued") {
          keepAsking(entry, found);
          say(`You are in line for “${nameOf(kindName, id)}”.`);
          return;
        }
        entry.lease = found;
        place = found.place;
        keepLease(entry);
      } else if (kind.mode === "lease") {
        entry.lease = await api("POST", pathOf(kind.join, id));
        place = entry.lease.place;
        keepLease(entry);
      } else {
        await api("POST", pathOf(kind.join, id));
      }
      entry.state = "in";
      remember();
      const name = nameOf(kindName, id);
      if (!quiet || place === "resumed") {
        say(place === "resumed" ? `Welcome back: your place in “${name}” was kept for you.`
          : kind.mode === "stream" ? "You are watching the stream." : `You joined “${name}”.`);
      }
    } catch (error) {
      joined.delete(key);
      remember();
      if (!quiet || error.code !== "not_found") complain(error.message);
      busy.delete(key);
      learn(kindName, id, error.problem || {});
    } finally {
      rerender();
    }
  }

  async function leave(kindName, id) {
    const kind = byKind.get(kindName);
    const entry = joined.get(keyOf(kindName, id));
    if (!entry) return;
    entry.leaving = true;
    clearInterval(entry.timer);
    clearTimeout(entry.timer);
    try {
      if (entry.state === "queued" && kind.mode === "stream") {
        await leaveStream(entry);
        say("You left the line for the stream.");
        return;
      }
      if (entry.state === "queued") {
        await api("DELETE", `${pathOf(kind.join, id)}/line`, undefined, entry.token);
        say(`You left the line for “${nameOf(kindName, id)}”.`);
        return;
      }
      if (kind.mode === "stream") {
        await leaveStream(entry);
      } else if (kind.mode === "lease") {
        const lease = entry.lease && `/leases/${encodeURIComponent(entry.lease.lease_id)}`;
        if (lease) await api("DELETE", lease, undefined, entry.token);
      } else {
        await api("POST", pathOf(kind.leave, id), undefined, entry.token);
      }
      say(kind.mode === "stream" ? "You left the stream." : `You left “${nameOf(kindName, id)}”.`);
    } catch (error) {
      complain(error.message);
    } finally {
      forget(entry);
    }
  }

  /** Say "leave" on the socket (the place is freed at once) and wait for it to close. */
  function leaveStream(entry) {
    const socket = entry.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => resolve();
      socket.addEventListener("close", done);
      setTimeout(done, 5000);
      socket.send(JSON.stringify({ type: "leave" }));
    });
  }

  async function toggle(button) {
    const card = button.closest("li.place");
    const { kind, placeId } = card.dataset;
    const key = keyOf(kind, placeId);
    if (busy.has(key) || needToken()) return;
    busy.add(key);
    const label = button.textContent;
    const line = button.dataset.action === "line";
    button.setAttribute("aria-disabled", "true");
    button.textContent = joined.has(key) ? "Leaving…" : "Joining…";
    try {
      if (joined.has(key)) await leave(kind, placeId);
      else await join(kind, placeId, { line });
    } finally {
      busy.delete(key);
      if (button.textContent.endsWith("…")) button.textContent = label;
      rerender();
      refresh();
    }
  }

  document.getElementById("live-places").addEventListener("click", (event) => {
    const button = event.target.closest('button[data-action="place"], button[data-action="line"]');
    if (button) toggle(button);
  });

  /** Leave everything (signing out); a live place stays kept only for a lost connection. */
  async function leaveAll() {
    await Promise.all([...joined.values()].map((e) => leave(e.kind, e.id)));
  }

  /** After signing in: rejoin what this tab held (a reload), and find huddle memberships. */
  async function signedIn(claims) {
    if (!claims) {
      await leaveAll();
      return;
    }
    let held = [];
    try {
      held = JSON.parse(sessionStorage.getItem(storeKey) || "[]");
    } catch {
      held = [];
    }
    await Promise.all(held
      .filter(([kind, id]) => byKind.has(kind) && !joined.has(keyOf(kind, id)))
      .map(([kind, id]) => join(kind, id, { quiet: true })));
    const huddles = [...byKind.values()].filter((k) => k.mode === "membership");
    await Promise.all(huddles.flatMap((kind) => [...document.querySelectorAll(
      `li.place[data-kind="${kind.kind}"]`)].map(async (card) => {
      const id = card.dataset.placeId;
      try {
        const members = await api("GET", pathOf(kind.members, id));
        if (members.includes(claims.sub) && !joined.has(keyOf(kind.kind, id))) {
          joined.set(keyOf(kind.kind, id), { kind: kind.kind, id, state: "in", token: getToken() });
        }
      } catch {
        /* not a member (403), or gone: nothing to show */
      }
    })));
    rerender();
  }

  return { render, signedIn };
}
