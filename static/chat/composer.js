// Sending: the composer's message appears at once ("Sending…") and stays queued until the server
// acknowledges it with a `message` frame, so a send survives a reconnect; a refused send hands its text back.

import { renderAttachments } from "./attachments.js";
import { checkLength, clearHint, scheduleResize, showHint } from "./message_box.js";
import {
  contentOf, createMessageElement, findOptimistic, setPart, statusLabel, streamingReply,
} from "./messages.js";
import { addConversationLink, goToLogin, sentToLogin, setPageTitle } from "./nav.js";
import { scrollToBottom } from "./scrolling.js";
import { connect, sendFrame } from "./socket.js";
import { state } from "./state.js";

let els = null;
let attachments = null;
let branches = null;
let createUrl = "";
let csrfToken = "";

/**
 * `els`: form, input, send, stop, transcript, emptyState; `attachments` and `branches` are the page's
 * image strip and version controls; `createUrl` makes a new conversation for the first send of a new chat.
 */
export function initComposer(options) {
  ({ els, attachments, branches, createUrl, csrfToken } = options);
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  els.input.addEventListener("keydown", onInputKeydown);
  els.stop.addEventListener("click", stopReply);
  els.emptyState.addEventListener("click", fillPrompt);
}

function submitComposer() {
  const text = els.input.value.replace(/^\s*\n/, "").trimEnd();
  // A message may be images only.
  if (!text.trim() && !attachments.count() && !attachments.uploading()) {
    els.input.focus();
    return;
  }
  if (checkLength()) return;
  if (isBusy()) {
    showHint("Claude is still replying. Wait for the reply to finish, or stop it with Esc.", "busy");
    return;
  }
  if (attachments.uploading()) {
    showHint("Wait for the images to finish uploading, then send.", "uploading");
    return;
  }
  const attached = attachments.take();
  const clientId = crypto.randomUUID();
  const el = createMessageElement("user");
  el.dataset.clientId = clientId;
  el.dataset.status = "sending";
  contentOf(el).textContent = text;
  setPart(el, "message-status", statusLabel("sending"));
  renderAttachments(el, attached);
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

/** Send (again) a queued message; its client_id lets the server store it only once. */
export function transmit(clientId) {
  const item = state.pending.get(clientId);
  if (!item) return;
  const ids = item.attachments.map((attachment) => attachment.id);
  sendFrame({ type: "send", text: item.text, client_id: clientId, attachments: ids });
}

/** Mark an optimistic message as not sent and hand its text back, so nothing typed is lost. */
export function failSend(clientId, reason) {
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
    setPart(el, "message-status", statusLabel("failed"));
  }
  if (!els.input.value) {
    els.input.value = item.text;
    scheduleResize();
  }
  if (!attachments.count() && !attachments.uploading()) attachments.restore(item.attachments);
  updateBusy();
}

async function createConversation() {
  let response;
  try {
    response = await fetch(createUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    });
  } catch {
    throw new Error("Could not reach the server. Check your connection and send again.");
  }
  if (response.status === 401 || sentToLogin(response)) {
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

export function stopReply() {
  const reply = streamingReply();
  sendFrame(reply?.dataset.id ? { type: "stop", id: reply.dataset.id } : { type: "stop" });
}

/** Whether the stop button shows: Esc stops a reply only then. */
export function canStop() {
  return !els.stop.hidden;
}

function isBusy() {
  return state.pending.size > 0 || state.awaitingReply || branches.pending() || streamingReply() !== null;
}

/** Swap Send for Stop while anything is being answered, and lock the version controls meanwhile. */
export function updateBusy() {
  const busy = isBusy();
  els.transcript.setAttribute("aria-busy", String(streamingReply() !== null));
  branches.setBusy(busy);
  if (!busy) clearHint("busy");
  if (els.send.hidden === busy) return;
  // Keep keyboard focus when the button that had it is swapped out.
  const hadFocus = document.activeElement === els.send || document.activeElement === els.stop;
  els.send.hidden = busy;
  els.stop.hidden = !busy;
  if (hadFocus) els.input.focus();
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
