// Shared by the Headcount pages: the caller's token, REST calls, and a live capacity feed.
// The feed polls the public capacity snapshot; it is the one place to switch to a push
// channel, so pages only ever see "here is the latest snapshot".

const TOKEN_KEY = "headcount.token";

/** `?token=` is moved into sessionStorage and removed from the address bar and history. */
export function adoptTokenFromUrl() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given.trim());
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value.trim());
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

/** For display only (who am I, has it expired); the server verifies the signature. */
export function readClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `request failed (HTTP ${status})`);
    this.status = status;
    this.code = problem && problem.code;
    this.problem = problem || {}; // a refusal's members, e.g. the count and limit it saw
  }
}

/**
 * Call the REST API; a refusal becomes an ApiError carrying the problem's detail and code.
 * `as` names the token to use instead of this tab's current one (a place left on signing
 * out is left as the user who took it).
 */
export async function api(method, path, body, as = undefined) {
  const headers = { Accept: "application/json" };
  const token = as === undefined ? getToken() : as;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // A fresh key per click: a network retry of this same request cannot hold twice.
  if (method !== "GET") headers["Idempotency-Key"] = crypto.randomUUID();
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { detail: "Headcount is unreachable; check your connection." });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/**
 * Deliver capacity snapshots of one event to `onSnapshot`: pushed over the capacity
 * WebSocket when it is available (a snapshot on connect and on every change), polled every
 * `intervalMs` otherwise (slower while the tab is hidden). `refresh()` asks for one now when
 * polling (e.g. right after the user acted). `onHealth(ok, how)` reports "push" / "poll".
 */
export function watchCapacity(eventId, intervalMs, onSnapshot, onHealth = () => {}) {
  const path = `/events/${encodeURIComponent(eventId)}/capacity`;
  let timer = null;
  let socket = null;
  let pushing = false;
  let inFlight = false;

  async function poll() {
    clearTimeout(timer);
    if (!inFlight) {
      inFlight = true;
      try {
        onSnapshot(await api("GET", path));
        onHealth(true, pushing ? "push" : "poll");
      } catch (error) {
        onHealth(false, error);
      } finally {
        inFlight = false;
      }
    }
    if (!pushing) timer = setTimeout(poll, document.hidden ? intervalMs * 5 : intervalMs);
  }

  function connect() {
    if (!("WebSocket" in window)) return;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${window.location.host}/ws${path}`;
    try {
      socket = new WebSocket(url);
    } catch {
      return;
    }
    onMessage(socket, (message) => {
      if (message.type === "snapshot" && message.snapshot) {
        if (!pushing) {
          pushing = true;
          clearTimeout(timer);
        }
        onSnapshot(message.snapshot);
        onHealth(true, "push");
      }
    });
    socket.addEventListener("close", () => {
      socket = null;
      if (pushing) {
        pushing = false;
        poll();
      }
      // Try the push channel again later; polling carries on meanwhile.
      setTimeout(connect, 10000);
    });
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !pushing) poll();
  });
  poll();
  connect();
  // While pushing, a pulled snapshot must not be mixed in: the server only sends what
  // differs from what it last sent on this socket, so a page showing a pulled state could
  // be left showing it after the server's state changed back. A push follows any change
  // within one server interval anyway.
  const refresh = () => (pushing ? undefined : poll());
  return { refresh, get mode() { return pushing ? "push" : "poll"; } };
}

/** The token form: paste a token, see who it is for, sign out. */
export function bindTokenForm(onChange) {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const signedIn = document.getElementById("signed-in");
  const who = document.getElementById("signed-in-as");
  function show() {
    const token = getToken();
    const claims = token && readClaims(token);
    form.hidden = Boolean(claims);
    signedIn.hidden = !claims;
    who.textContent = claims ? `${claims.sub} (${claims.role})` : "";
    onChange(claims);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value);
    input.value = "";
    show();
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    clearToken();
    show();
    input.focus();
  });
  show();
}

/** Calls `handle` with each JSON message `socket` receives; a frame that is not JSON is
 * ignored, as a newer server's extension would be. */
export function onMessage(socket, handle) {
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(message);
  });
}

/** What every live card holds under its heading: an availability line of `fields`, the
 * caller's own note (hidden until there is one), and a row for its buttons. */
export function cardParts(headingTag, headingId, title, fields) {
  const heading = document.createElement(headingTag);
  heading.id = headingId;
  heading.textContent = title;
  const availability = document.createElement("p");
  availability.className = "availability";
  availability.innerHTML = fields.map((f) => `<span data-field="${f}"></span>`).join("");
  const mine = document.createElement("p");
  mine.className = "mine muted";
  mine.dataset.field = "mine";
  mine.hidden = true;
  const actions = document.createElement("div");
  actions.className = "actions";
  return { heading, availability, mine, actions };
}

export function setText(root, field, value) {
  for (const el of root.querySelectorAll(`[data-field="${field}"]`)) el.textContent = String(value);
}
