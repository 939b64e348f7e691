// Frames from the server (docs/protocol.md), one handler per type, and resuming after a drop: every delta
// carries its reply's seq, so a gap or an unknown reply asks for a `sync` snapshot instead of guessing.

import { announce } from "./announce.js";
import { failSend, transmit, updateBusy } from "./composer.js";
import { showHint } from "./message_box.js";
import {
  applyMessage, contentOf, createMessageElement, findMessage, findOptimistic, replies, setPart, setTyping,
  streamingIds,
} from "./messages.js";
import { moveConversationToTop, renameConversation, setPageTitle } from "./nav.js";
import { appendRendered } from "./rendered.js";
import { followContent, isPinned, onScroll } from "./scrolling.js";
import { resetBackoff, sendFrame } from "./socket.js";
import { state } from "./state.js";
import { appendThinking, showConversationUsage, upsertStep } from "./steps.js";

const ANNOUNCEMENTS = { complete: "Reply complete", stopped: "Reply stopped", interrupted: "Reply interrupted" };

let els = null;
let branches = null;
let resetOlder = null;
let openedBefore = false; // a later open is a reconnect
const syncing = new Set(); // reply ids with a `sync` request outstanding

/**
 * `els`: transcript, emptyState, demoBadge, modelName, usage; `branches` are the version controls;
 * `resetOlder(hasOlder)` re-arms loading older messages once a `history` frame replaced the list.
 */
export function initFrames(options) {
  ({ els, branches, resetOlder } = options);
}

const handlers = {
  ready: onReady,
  message: onMessage,
  history: onHistory,
  tool: onTool,
  delta: onDelta,
  status: onStatus,
  conversation: onConversation,
  error: onError,
};

export function onFrame(frame) {
  handlers[frame.type]?.(frame);
}

/** The socket (re)opened: catch up on what may have changed while it was closed, then send what is queued. */
export function resume() {
  syncing.clear();
  // Back after a drop: another tab may have edited, regenerated or switched versions meanwhile. (With sends
  // still pending, their acknowledgements come first; the next reconnect or reload catches up.)
  if (openedBefore && !state.pending.size) sendFrame({ type: "history" });
  openedBefore = true;
  const ids = streamingIds();
  if (ids.length && sendFrame({ type: "sync", ids })) ids.forEach((id) => syncing.add(id));
  for (const clientId of state.pending.keys()) transmit(clientId);
}

function requestSync(id) {
  if (syncing.has(id)) return;
  if (sendFrame({ type: "sync", ids: [id] })) syncing.add(id);
}

/** The element of reply `id`; null (after asking for its snapshot) for a reply this page has not seen yet. */
function replyOrSync(id) {
  const el = findMessage(id);
  if (!el) requestSync(id);
  return el;
}

/** The transcript grew or changed: the busy state may have too, and the view may follow it down. */
function contentChanged() {
  updateBusy();
  followContent();
}

function onReady(frame) {
  resetBackoff();
  // Replies still streaming are announced next as snapshots; anything else we were waiting for is over.
  state.awaitingReply = false;
  branches.connectionReset();
  els.demoBadge.hidden = !frame.demo;
  if (frame.model) els.modelName.textContent = frame.model;
  updateBusy();
}

function onMessage({ message, usage_totals: totals }) {
  syncing.delete(message.id);
  if (totals) showConversationUsage(els.usage, totals);
  if (message.client_id) branches.acknowledge(message.client_id);
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
  const shown = replies.seqs.get(message.id);
  return el.dataset.status === "streaming" && message.status === "streaming" && shown !== undefined && message.seq < shown;
}

function onDelta({ id, seq, text, reasoning, blocks, tail }) {
  const el = replyOrSync(id);
  if (!el) return;
  if (el.dataset.status !== "streaming") return;
  const last = replies.seqs.get(id);
  // Text rendered by the server has no known seq: only a snapshot can say where the deltas continue.
  if (last === undefined || seq > last + 1) {
    requestSync(id);
    return;
  }
  if (seq <= last) return;
  replies.seqs.set(id, seq);
  if (reasoning) appendThinking(el, reasoning);
  if (text) replies.sources.set(id, (replies.sources.get(id) ?? "") + text);
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
  renameConversation(id, title);
  if (id === state.conversation) setPageTitle(title);
}

/** A tool step of a streaming reply, inserted or replaced by its id. */
function onTool({ id, step }) {
  const el = replyOrSync(id);
  if (!el) return;
  upsertStep(el, step);
  contentChanged();
}

/** The visible conversation changed (a regenerate, an edit or a branch switch, from any tab). */
function onHistory({ messages, has_older: hasOlder }) {
  const restore = branches.beforeHistory(isPinned());
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
  if (clientId && branches.takeError(clientId, text)) return;
  if (clientId) failSend(clientId, text);
  else if (code !== "unknown_type") showHint(text, "server");
}

function announceOutcome(message, previous) {
  if (message.status === "streaming" || previous === message.status) return;
  if (previous !== null && previous !== "streaming") return;
  if (message.status === "error") announce(`Reply failed: ${message.error || "unknown error"}`);
  else if (ANNOUNCEMENTS[message.status]) announce(ANNOUNCEMENTS[message.status]);
}
