// The chat page: one WebSocket per open conversation (docs/protocol.md), optimistic sends that survive
// reconnects, and replies streamed into the transcript as HTML rendered and sanitised by the server.

import { createAttachments, renderAttachments } from "./attachments.js";
import {
  appendRendered, bindCopyButtons, createActions, setSource, showRendered, watchOlder,
} from "./rendered.js";
import { initSidebar } from "./sidebar.js"; // [sidebar]
import { initFeedback, showRating } from "./feedback.js"; // [feedback]
import { initShortcuts } from "./shortcuts.js"; // [shortcuts]
import {
  appendThinking, enhanceRendered, renderSteps, renderThinking, renderUsage, showConversationUsage, upsertStep,
} from "./steps.js"; // [steps]
import { initBranches } from "./branches.js"; // [branches]

const config = JSON.parse(document.getElementById("chat-config").textContent);
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

const els = {
  main: document.getElementById("main"),
  heading: document.getElementById("conversation-heading"),
  scroller: document.getElementById("scroller"),
  transcript: document.getElementById("transcript"),
  emptyState: document.getElementById("empty-state"),
  form: document.getElementById("composer"),
  input: document.getElementById("message-input"),
  send: document.getElementById("send-button"),
  stop: document.getElementById("stop-button"),
  hint: document.getElementById("composer-hint"),
  jump: document.getElementById("jump-latest"),
  list: document.getElementById("conversation-list"),
  listEmpty: document.getElementById("conversation-list-empty"),
  connection: document.getElementById("connection-status"),
  live: document.getElementById("live-status"),
  demoBadge: document.getElementById("demo-badge"),
  modelName: document.getElementById("model-name"),
  menu: document.getElementById("menu-button"),
  sidebar: document.getElementById("sidebar"),
  backdrop: document.getElementById("sidebar-backdrop"),
  usage: document.getElementById("conversation-usage"),
};

const APP_NAME = "Claude Chat";
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 10_000;
// How close to the bottom still counts as "reading the latest" (so small scroll jitters do not unpin).
const PIN_THRESHOLD_PX = 48;
// Above this many characters the textarea is certainly taller than its cap, so it is not measured.
const MEASURE_LIMIT_CHARS = 4000;
const STATUS_LABELS = { sending: "Sending…", failed: "Not sent", stopped: "Stopped", interrupted: "Interrupted" };
const ANNOUNCEMENTS = { complete: "Reply complete", stopped: "Reply stopped", interrupted: "Reply interrupted" };
// Parts of a message element, in document order; each exists only while it has something to show.
const PARTS = ["message-content", "typing-indicator", "message-note", "message-error", "message-status", "message-actions"];

const state = {
  conversation: config.conversation,
  socket: null,
  attempts: 0,
  reconnectTimer: 0,
  gaveUp: false,
  pending: new Map(), // client_id -> {text}: sends not yet acknowledged by a `message` frame
  seqs: new Map(), // reply id -> seq of the last delta its shown text includes
  sources: new Map(), // streaming reply id -> its Markdown so far (kept whole here, not re-read from the DOM)
  syncing: new Set(), // reply ids with a `sync` request outstanding
  openedBefore: false, // a later open is a reconnect
  awaitingReply: false, // our message was stored; its reply placeholder has not arrived yet
  pinned: true,
  hintKind: null,
};
// Set by init(): re-arms loading older messages once a `history` frame replaced the list.
let resetOlder = () => {};

// [attachments] The images of the message being written (static/chat/attachments.js).
const attachments = createAttachments({
  uploadUrl: config.uploadUrl,
  csrfToken,
  maxFiles: config.maxAttachments,
  maxBytes: config.maxUploadBytes,
  onChange: () => {
    if (state.hintKind === "uploading" && !attachments.uploading()) showHint(null);
  },
  onHint: (text) => showHint(text, "attachments"),
});

// [branches] Regenerate, edit and the version switcher (static/chat/branches.js).
const branches = initBranches({
  transcript: els.transcript,
  scroller: els.scroller,
  input: els.input,
  send: (frame) => sendFrame(frame),
  onHint: (text) => showHint(text, "server"),
  announce: (text) => announce(text),
});

// ---------------------------------------------------------------------------------------------------------
// Message elements

function findMessage(id) {
  return els.transcript.querySelector(`.message[data-id="${CSS.escape(id)}"]`);
}

function findOptimistic(clientId) {
  return els.transcript.querySelector(`.message[data-client-id="${CSS.escape(clientId)}"]`);
}

function streamingReply() {
  return els.transcript.querySelector('.message[data-role="assistant"][data-status="streaming"]');
}

function streamingIds() {
  const nodes = els.transcript.querySelectorAll('.message[data-role="assistant"][data-status="streaming"]');
  return Array.from(nodes, (node) => node.dataset.id).filter(Boolean);
}

function createMessageElement(role) {
  const el = document.createElement("article");
  el.className = `message message--${role}`;
  el.dataset.role = role;
  const author = document.createElement("h2");
  author.className = "visually-hidden";
  author.textContent = role === "user" ? "You said:" : "Claude said:";
  const content = document.createElement("div");
  content.className = "message-content markdown";
  el.append(author, content, createActions(role));
  els.transcript.append(el);
  els.emptyState.hidden = true;
  return el;
}

/** Show `text` in the part `cls` of a message, creating it in its place; remove the part when text is empty. */
function setPart(el, cls, text) {
  let node = el.querySelector(`:scope > .${cls}`);
  if (!text) {
    node?.remove();
    return;
  }
  if (!node) {
    node = document.createElement("p");
    node.className = cls;
    insertPart(el, node, cls);
  }
  node.textContent = text;
}

function insertPart(el, node, cls) {
  const later = PARTS.slice(PARTS.indexOf(cls) + 1)
    .map((name) => el.querySelector(`:scope > .${name}`))
    .find(Boolean);
  el.insertBefore(node, later ?? null);
}

function setTyping(el, on) {
  const node = el.querySelector(":scope > .typing-indicator");
  if (!on) {
    node?.remove();
    return;
  }
  if (node) return;
  const indicator = document.createElement("div");
  indicator.className = "typing-indicator";
  for (let i = 0; i < 3; i += 1) {
    const dot = document.createElement("span");
    dot.className = "dot";
    indicator.append(dot);
  }
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = "Claude is thinking…";
  indicator.append(label);
  insertPart(el, indicator, "typing-indicator");
}

function contentOf(el) {
  return el.querySelector(":scope > .message-content");
}

/** Bring an element up to date with the whole state of a message from a `message` frame. */
function applyMessage(el, message) {
  el.dataset.id = message.id;
  el.dataset.status = message.status;
  const text = message.content ?? "";
  const streaming = message.status === "streaming";
  showRendered(contentOf(el), message.html, message.tail, streaming);
  setSource(el, text);
  if (streaming) state.sources.set(message.id, text);
  else state.sources.delete(message.id);
  if (message.role === "assistant") state.seqs.set(message.id, message.seq ?? 0);
  setTyping(el, message.status === "streaming" && !text);
  setPart(el, "message-note", "");
  const failed = message.status === "error" ? "The reply failed." : "";
  setPart(el, "message-error", message.error || failed);
  setPart(el, "message-status", STATUS_LABELS[message.status] ?? "");
  renderAttachments(el, message.attachments); // [attachments]
  renderThinking(el, message); // [steps]
  renderSteps(el, message.tools, message.status); // [steps]
  branches.decorate(el, message); // [branches]
  renderUsage(el, message.usage, message.status); // [steps]
  if ("rating" in message) showRating(el, message.rating); // [feedback] history frames say the vote
}

// ---------------------------------------------------------------------------------------------------------
// Frames from the server, one function per type

const frameHandlers = {
  ready: onReady,
  message: onMessage,
  history: onHistory,
  tool: onTool,
  delta: onDelta,
  status: onStatus,
  conversation: onConversation,
  error: onError,
};

function onFrame(event) {
  let frame;
  try {
    frame = JSON.parse(event.data);
  } catch {
    return;
  }
  frameHandlers[frame.type]?.(frame);
}

function onReady(frame) {
  state.attempts = 0;
  // Replies still streaming are announced next as snapshots; anything else we were waiting for is over.
  state.awaitingReply = false;
  branches.connectionReset(); // [branches]
  els.demoBadge.hidden = !frame.demo;
  if (frame.model) els.modelName.textContent = frame.model;
  updateBusy();
}

function onMessage({ message, usage_totals: totals }) {
  state.syncing.delete(message.id);
  if (totals) showConversationUsage(els.usage, totals); // [steps]
  if (message.client_id) branches.acknowledge(message.client_id); // [branches]
  let el = findMessage(message.id);
  const optimistic = message.client_id ? findOptimistic(message.client_id) : null;
  if (message.client_id && state.pending.delete(message.client_id)) state.awaitingReply = true;
  if (optimistic && optimistic !== el) {
    if (el) optimistic.remove();
    else el = optimistic;
  }
  const previous = el ? el.dataset.status : null;
  if (el && isStaleSnapshot(el, message)) return;
  el ??= createMessageElement(message.role);
  applyMessage(el, message);
  if (message.role === "assistant") {
    state.awaitingReply = false;
    announceOutcome(message, previous);
  } else {
    moveConversationToTop(state.conversation);
  }
  contentChanged();
}

/** A snapshot older than the deltas already shown (a late answer to a sync) would rewind the text. */
function isStaleSnapshot(el, message) {
  const shown = state.seqs.get(message.id);
  return el.dataset.status === "streaming" && message.status === "streaming" && shown !== undefined && message.seq < shown;
}

function onDelta({ id, seq, text, reasoning, blocks, tail }) {
  const el = findMessage(id);
  if (!el) {
    requestSync(id);
    return;
  }
  if (el.dataset.status !== "streaming") return;
  const last = state.seqs.get(id);
  // Text rendered by the server has no known seq: only a snapshot can say where the deltas continue.
  if (last === undefined || seq > last + 1) {
    requestSync(id);
    return;
  }
  if (seq <= last) return;
  state.seqs.set(id, seq);
  if (reasoning) appendThinking(el, reasoning); // [steps]
  if (text) state.sources.set(id, (state.sources.get(id) ?? "") + text);
  appendRendered(contentOf(el), blocks, tail);
  setTyping(el, false);
  setPart(el, "message-note", "");
  contentChanged();
}

function onStatus({ id, detail }) {
  const el = findMessage(id);
  if (el) setPart(el, "message-note", detail);
}

function onConversation({ id, title }) {
  // The conversation may be listed among the pinned ones or the recent ones.
  for (const link of document.querySelectorAll(`.conversation-link[data-id="${CSS.escape(id)}"]`)) {
    link.textContent = title;
  }
  if (id === state.conversation) setPageTitle(title);
}

/** A tool step of a streaming reply, inserted or replaced by its id. */
function onTool({ id, step }) {
  const el = findMessage(id);
  if (!el) {
    requestSync(id);
    return;
  }
  upsertStep(el, step);
  contentChanged();
}

/** The visible conversation changed (a regenerate, an edit or a branch switch, from any tab). */
function onHistory({ messages, has_older: hasOlder }) {
  const restore = branches.beforeHistory(state.pinned);
  const wanted = new Set(messages.map((message) => message.id));
  const kept = new Map();
  for (const el of els.transcript.querySelectorAll(".message[data-id]")) {
    if (wanted.has(el.dataset.id)) kept.set(el.dataset.id, el);
    else el.remove();
  }
  // Messages still shown keep their element (an open thinking section, a vote, loaded images).
  let previous = null;
  for (const message of messages) {
    const el = kept.get(message.id) ?? createMessageElement(message.role);
    const expected = previous ? previous.nextElementSibling : els.transcript.firstElementChild;
    if (el !== expected) els.transcript.insertBefore(el, expected);
    applyMessage(el, message);
    previous = el;
  }
  state.awaitingReply = false;
  els.emptyState.hidden = messages.length > 0 || state.pending.size > 0;
  resetOlder(Boolean(hasOlder));
  restore();
  onScroll();
  contentChanged();
}

function onError({ code, message, client_id: clientId }) {
  const text = message || "The server refused the request.";
  if (clientId && branches.takeError(clientId, text)) return; // [branches]
  if (clientId) failSend(clientId, text);
  else if (code !== "unknown_type") showHint(text, "server");
}

function announceOutcome(message, previous) {
  if (message.status === "streaming" || previous === message.status) return;
  if (previous !== null && previous !== "streaming") return;
  if (message.status === "error") announce(`Reply failed: ${message.error || "unknown error"}`);
  else if (ANNOUNCEMENTS[message.status]) announce(ANNOUNCEMENTS[message.status]);
}

// ---------------------------------------------------------------------------------------------------------
// The socket

function connect() {
  clearTimeout(state.reconnectTimer);
  if (!state.conversation || state.gaveUp || state.socket) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${config.wsPrefix}${state.conversation}/`);
  state.socket = socket;
  socket.addEventListener("open", onOpen);
  socket.addEventListener("message", onFrame);
  socket.addEventListener("close", (event) => onClose(socket, event));
}

function onOpen() {
  state.syncing.clear();
  setConnectionStatus(null);
  // Back after a drop: another tab may have edited, regenerated or switched versions meanwhile. (With sends
  // still pending, their acknowledgements come first; the next reconnect or reload catches up.)
  if (state.openedBefore && !state.pending.size) sendFrame({ type: "history" });
  state.openedBefore = true;
  const ids = streamingIds();
  if (ids.length && sendFrame({ type: "sync", ids })) ids.forEach((id) => state.syncing.add(id));
  for (const clientId of state.pending.keys()) transmit(clientId);
}

function onClose(socket, event) {
  if (state.socket !== socket) return;
  state.socket = null;
  if (event.code === 4401) {
    goToLogin();
  } else if (event.code === 4404) {
    state.gaveUp = true;
    setConnectionStatus("This conversation does not exist.", true);
    els.emptyState.hidden = true;
    els.input.disabled = true;
    els.send.disabled = true;
  } else {
    setConnectionStatus("Reconnecting…");
    scheduleReconnect();
  }
}

function scheduleReconnect() {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** state.attempts);
  state.attempts += 1;
  // Jitter spreads the reconnects of many tabs after a deploy restarts every dyno at once.
  state.reconnectTimer = setTimeout(connect, ceiling * (0.75 + Math.random() * 0.25));
}

function reconnectNow() {
  if (state.socket || state.gaveUp || !state.conversation) return;
  state.attempts = 0;
  connect();
}

function sendFrame(frame) {
  if (state.socket?.readyState !== WebSocket.OPEN) return false;
  state.socket.send(JSON.stringify(frame));
  return true;
}

function requestSync(id) {
  if (state.syncing.has(id)) return;
  if (sendFrame({ type: "sync", ids: [id] })) state.syncing.add(id);
}

function setConnectionStatus(text, fatal = false) {
  els.connection.hidden = !text;
  els.connection.textContent = text ?? "";
  els.connection.classList.toggle("is-fatal", fatal);
}

function goToLogin() {
  state.gaveUp = true;
  const next = encodeURIComponent(location.pathname);
  location.assign(`${els.main.dataset.loginUrl}?next=${next}`);
}

// ---------------------------------------------------------------------------------------------------------
// Sending

function submitComposer() {
  const text = els.input.value.replace(/^\s*\n/, "").trimEnd();
  // [attachments] A message may be images only.
  if (!text.trim() && !attachments.count() && !attachments.uploading()) {
    els.input.focus();
    return;
  }
  if (checkLength()) return;
  if (isBusy()) {
    showHint("Claude is still replying. Wait for the reply to finish, or stop it with Esc.", "busy");
    return;
  }
  // [attachments] Nothing is sent while an image is still uploading.
  if (attachments.uploading()) {
    showHint("Wait for the images to finish uploading, then send.", "uploading");
    return;
  }
  const attached = attachments.take(); // [attachments]
  const clientId = crypto.randomUUID();
  const el = createMessageElement("user");
  el.dataset.clientId = clientId;
  el.dataset.status = "sending";
  contentOf(el).textContent = text;
  setPart(el, "message-status", STATUS_LABELS.sending);
  renderAttachments(el, attached); // [attachments]
  state.pending.set(clientId, { text, attachments: attached });
  els.input.value = "";
  scheduleResize();
  showHint(null);
  scrollToBottom();
  updateBusy();
  dispatchSend(clientId);
}

function dispatchSend(clientId) {
  if (state.conversation) {
    transmit(clientId);
    return;
  }
  // The queue is flushed by the socket's open handler, so the send goes out once it connects.
  createConversation().then(connect, (error) => failSend(clientId, error.message));
}

function transmit(clientId) {
  const item = state.pending.get(clientId);
  if (!item) return;
  const ids = item.attachments.map((attachment) => attachment.id); // [attachments]
  sendFrame({ type: "send", text: item.text, client_id: clientId, attachments: ids });
}

/** Mark an optimistic message as not sent and hand its text back, so nothing typed is lost. */
function failSend(clientId, reason) {
  const item = state.pending.get(clientId);
  if (!item) {
    showHint(reason, "server");
    return;
  }
  state.pending.delete(clientId);
  const el = findOptimistic(clientId);
  if (el && !el.dataset.id) {
    el.dataset.status = "failed";
    setPart(el, "message-error", reason);
    setPart(el, "message-status", STATUS_LABELS.failed);
  }
  if (!els.input.value) {
    els.input.value = item.text;
    scheduleResize();
  }
  if (!attachments.count() && !attachments.uploading()) attachments.restore(item.attachments); // [attachments]
  updateBusy();
}

async function createConversation() {
  let response;
  try {
    response = await fetch(config.createUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    });
  } catch {
    throw new Error("Could not reach the server. Check your connection and send again.");
  }
  if (response.status === 401 || (response.redirected && response.url.includes(els.main.dataset.loginUrl))) {
    goToLogin();
    throw new Error("Your session has ended. Log in again to continue.");
  }
  if (!response.ok) throw new Error(`Could not start a new conversation (HTTP ${response.status}). Try again.`);
  const data = await response.json();
  state.conversation = data.id;
  history.pushState({ conversation: data.id }, "", data.url);
  addConversationLink(data);
  setPageTitle(data.title);
}

function stopReply() {
  const reply = streamingReply();
  sendFrame(reply?.dataset.id ? { type: "stop", id: reply.dataset.id } : { type: "stop" });
}

function isBusy() {
  return state.pending.size > 0 || state.awaitingReply || branches.pending() || streamingReply() !== null;
}

function updateBusy() {
  const busy = isBusy();
  els.transcript.setAttribute("aria-busy", String(streamingReply() !== null));
  branches.setBusy(busy); // [branches]
  if (!busy && state.hintKind === "busy") showHint(null);
  if (els.send.hidden === busy) return;
  // Keep keyboard focus when the button that had it is swapped out.
  const hadFocus = document.activeElement === els.send || document.activeElement === els.stop;
  els.send.hidden = busy;
  els.stop.hidden = !busy;
  if (hadFocus) els.input.focus();
}

// ---------------------------------------------------------------------------------------------------------
// Composer: hints, length limit and an auto-growing textarea

function showHint(text, kind = null) {
  els.hint.textContent = text ?? "";
  state.hintKind = text ? kind : null;
}

function charCount(text) {
  // The server counts code points; JS counts UTF-16 units. Only pay for the difference near the limit.
  if (text.length <= config.maxChars) return text.length;
  return text.length - (text.match(/[\uD800-\uDBFF]/g)?.length ?? 0);
}

/** Show or clear the "too long" message; true when the text is over the limit. */
function checkLength() {
  const count = charCount(els.input.value);
  const over = count > config.maxChars;
  if (over) {
    els.input.setAttribute("aria-invalid", "true");
    const fmt = new Intl.NumberFormat();
    showHint(
      `This message is ${fmt.format(count)} characters long; the limit is ${fmt.format(config.maxChars)}. ` +
        "Shorten it to send.",
      "length",
    );
  } else {
    els.input.removeAttribute("aria-invalid");
    if (state.hintKind === "length") showHint(null);
  }
  return over;
}

let resizeFrame = 0;

function scheduleResize() {
  if (resizeFrame) return;
  resizeFrame = requestAnimationFrame(() => {
    resizeFrame = 0;
    resizeInput();
    checkLength();
  });
}

function resizeInput() {
  const input = els.input;
  if (input.value.length > MEASURE_LIMIT_CHARS) {
    input.style.height = getComputedStyle(input).maxHeight;
    return;
  }
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight}px`;
}

function onInputKeydown(event) {
  if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  submitComposer();
}

function fillPrompt(event) {
  const button = event.target.closest(".example-prompt");
  if (!button) return;
  els.input.value = button.dataset.prompt;
  scheduleResize();
  els.input.focus();
  els.input.setSelectionRange(els.input.value.length, els.input.value.length);
}

// ---------------------------------------------------------------------------------------------------------
// Transcript scrolling and announcements

function distanceFromBottom() {
  const { scrollHeight, scrollTop, clientHeight } = els.scroller;
  return scrollHeight - scrollTop - clientHeight;
}

function onScroll() {
  state.pinned = distanceFromBottom() <= PIN_THRESHOLD_PX;
  els.jump.hidden = state.pinned;
}

let scrollFrame = 0;

/** After the transcript grows: follow it while pinned, otherwise offer a way back down. */
function contentChanged() {
  updateBusy();
  if (scrollFrame) return;
  scrollFrame = requestAnimationFrame(() => {
    scrollFrame = 0;
    if (state.pinned) els.scroller.scrollTop = els.scroller.scrollHeight;
    else els.jump.hidden = distanceFromBottom() <= PIN_THRESHOLD_PX;
  });
}

function scrollToBottom(smooth = false) {
  state.pinned = true;
  els.jump.hidden = true;
  const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
  els.scroller.scrollTo({ top: els.scroller.scrollHeight, behavior: smooth && !reduced ? "smooth" : "auto" });
}

function jumpToLatest() {
  scrollToBottom(true);
  els.input.focus({ preventScroll: true });
}

function announce(text) {
  // Clearing first makes screen readers repeat an announcement identical to the previous one.
  els.live.textContent = "";
  setTimeout(() => {
    els.live.textContent = text;
  }, 50);
}

// ---------------------------------------------------------------------------------------------------------
// Sidebar and page title

function addConversationLink({ id, url, title }) {
  for (const current of els.list.querySelectorAll('[aria-current="page"]')) current.removeAttribute("aria-current");
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.className = "conversation-link";
  link.href = url;
  link.dataset.id = id;
  link.textContent = title;
  link.setAttribute("aria-current", "page");
  item.append(link);
  els.list.prepend(item);
  els.listEmpty.hidden = true;
}

function moveConversationToTop(id) {
  const link = id && els.list.querySelector(`.conversation-link[data-id="${CSS.escape(id)}"]`);
  const item = link?.closest("li");
  if (item && item !== els.list.firstElementChild) els.list.prepend(item);
}

function setPageTitle(title) {
  document.title = `${title} · ${APP_NAME}`;
  els.heading.textContent = title;
}

function setSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  els.menu.setAttribute("aria-expanded", String(open));
  if (open) els.sidebar.querySelector("a, button")?.focus();
  else if (els.sidebar.contains(document.activeElement)) els.menu.focus();
}

function onDocumentKeydown(event) {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  if (document.body.classList.contains("sidebar-open")) {
    setSidebar(false);
  } else if (!els.stop.hidden) {
    event.preventDefault();
    stopReply();
  }
}

// ---------------------------------------------------------------------------------------------------------

function bindEvents() {
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  els.input.addEventListener("keydown", onInputKeydown);
  els.input.addEventListener("input", scheduleResize);
  els.stop.addEventListener("click", stopReply);
  els.jump.addEventListener("click", jumpToLatest);
  els.scroller.addEventListener("scroll", onScroll, { passive: true });
  els.emptyState.addEventListener("click", fillPrompt);
  els.menu.addEventListener("click", () => setSidebar(!document.body.classList.contains("sidebar-open")));
  els.backdrop.addEventListener("click", () => setSidebar(false));
  document.addEventListener("keydown", onDocumentKeydown);
  bindCopyButtons(els.transcript, (el) => state.sources.get(el.dataset.id));
  window.addEventListener("online", reconnectNow);
  // The page for another URL is a different page: after Back/Forward, load it rather than fake it.
  window.addEventListener("popstate", () => location.reload());
}

function init() {
  bindEvents();
  els.send.disabled = false;
  scheduleResize();
  scrollToBottom();
  enhanceRendered(els.transcript, els.usage); // [steps]
  resetOlder = watchOlder(els.transcript, els.scroller, () => {
    enhanceRendered(els.transcript); // [steps]
    updateBusy();
  });
  updateBusy();
  connect();
}

init();
initSidebar({ sidebar: els.sidebar, confirmDialog: document.getElementById("confirm-delete"), currentId: state.conversation, indexUrl: document.getElementById("new-chat").href }); // [sidebar]
initFeedback(els.transcript, (id) => els.transcript.dataset.feedbackUrl.replace("00000000-0000-0000-0000-000000000000", id), csrfToken); // [feedback]
initShortcuts({ dialog: document.getElementById("shortcuts-dialog"), search: document.getElementById("search-input"), input: els.input, newChatUrl: document.getElementById("new-chat").href }); // [shortcuts]
