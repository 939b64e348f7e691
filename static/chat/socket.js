// The conversation's WebSocket (docs/protocol.md): one at a time, reconnected with backoff and jitter until
// the server says the user is logged out (4401) or the conversation is gone (4404).

const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 10_000;
const CLOSE_LOGGED_OUT = 4401;
const CLOSE_NOT_FOUND = 4404;

let socket = null;
let attempts = 0;
let reconnectTimer = 0;
let gaveUp = false;
let hooks = null;

/**
 * Set what the socket talks to. `url()` is the socket's URL, or null while there is no conversation yet;
 * `onOpen()` runs on every open, `onFrame(frame)` for each parsed frame, `onDrop()` when a reconnect is
 * scheduled, `onLoggedOut()` and `onNotFound()` when the server closed for good.
 */
export function initSocket({ url, onOpen, onFrame, onDrop, onLoggedOut, onNotFound }) {
  hooks = { url, onOpen, onFrame, onDrop, onLoggedOut, onNotFound };
}

export function connect() {
  clearTimeout(reconnectTimer);
  const url = hooks.url();
  if (!url || gaveUp || socket) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const opened = new WebSocket(`${scheme}//${location.host}${url}`);
  socket = opened;
  opened.addEventListener("open", () => hooks.onOpen());
  opened.addEventListener("message", onMessage);
  opened.addEventListener("close", (event) => onClose(opened, event));
}

function onMessage(event) {
  let frame;
  try {
    frame = JSON.parse(event.data);
  } catch {
    return;
  }
  hooks.onFrame(frame);
}

function onClose(closed, event) {
  if (socket !== closed) return;
  socket = null;
  if (event.code === CLOSE_LOGGED_OUT) {
    hooks.onLoggedOut();
  } else if (event.code === CLOSE_NOT_FOUND) {
    gaveUp = true;
    hooks.onNotFound();
  } else {
    hooks.onDrop();
    scheduleReconnect();
  }
}

function scheduleReconnect() {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** attempts);
  attempts += 1;
  // Jitter spreads the reconnects of many tabs after a deploy restarts every dyno at once.
  reconnectTimer = setTimeout(connect, ceiling * (0.75 + Math.random() * 0.25));
}

/** The server answered (`ready`): the next drop starts the backoff from the beginning again. */
export function resetBackoff() {
  attempts = 0;
}

/** Back online: try at once instead of waiting out the backoff. */
export function reconnectNow() {
  if (socket || gaveUp || !hooks.url()) return;
  attempts = 0;
  connect();
}

/** Never reconnect again (the page is leaving for the login page). */
export function giveUp() {
  gaveUp = true;
}

/** Send one frame; false when the socket is not open, so the caller can tell the user. */
export function sendFrame(frame) {
  if (socket?.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}
