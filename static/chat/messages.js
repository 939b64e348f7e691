// Message elements in the transcript: found by id, created for new messages, and brought up to date from a
// `message` frame. Every text goes in with textContent; the only HTML is the server's sanitised rendering.

import { renderAttachments } from "./attachments.js";
import { showRating } from "./feedback.js";
import { createActions, setSource, showRendered } from "./rendered.js";
import { renderSteps, renderThinking, renderUsage } from "./steps.js";

const STATUS_LABELS = { sending: "Sending…", failed: "Not sent", stopped: "Stopped", interrupted: "Interrupted" };
// Parts of a message element, in document order; each exists only while it has something to show.
const PARTS = ["message-content", "typing-indicator", "message-note", "message-error", "message-status", "message-actions"];
const STREAMING_REPLY = '.message[data-role="assistant"][data-status="streaming"]';

let transcript = null;
let emptyState = null;
let branches = null;

/**
 * What the page knows of each reply beyond its element: `seqs` maps a reply id to the seq of the last delta
 * its shown text includes; `sources` maps a streaming reply id to its Markdown so far (kept whole here, not
 * re-read from the DOM, so Copy works mid-stream).
 */
export const replies = { seqs: new Map(), sources: new Map() };

/** `branches` decorates each message with its version controls (static/chat/branches.js). */
export function initMessages(options) {
  ({ transcript, emptyState, branches } = options);
}

export function statusLabel(status) {
  return STATUS_LABELS[status] ?? "";
}

export function findMessage(id) {
  return transcript.querySelector(`.message[data-id="${CSS.escape(id)}"]`);
}

export function findOptimistic(clientId) {
  return transcript.querySelector(`.message[data-client-id="${CSS.escape(clientId)}"]`);
}

export function streamingReply() {
  return transcript.querySelector(STREAMING_REPLY);
}

export function streamingIds() {
  return Array.from(transcript.querySelectorAll(STREAMING_REPLY), (node) => node.dataset.id).filter(Boolean);
}

export function contentOf(el) {
  return el.querySelector(":scope > .message-content");
}

/** A new, empty message at the end of the transcript. */
export function createMessageElement(role) {
  const el = document.createElement("article");
  el.className = `message message--${role}`;
  el.dataset.role = role;
  const author = document.createElement("h2");
  author.className = "visually-hidden";
  author.textContent = role === "user" ? "You said:" : "Claude said:";
  const content = document.createElement("div");
  content.className = "message-content markdown";
  el.append(author, content, createActions(role));
  transcript.append(el);
  emptyState.hidden = true;
  return el;
}

/** Show `text` in the part `cls` of a message, creating it in its place; remove the part when text is empty. */
export function setPart(el, cls, text) {
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

/** The three dots shown while a reply has no text yet. */
export function setTyping(el, on) {
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

/** Bring an element up to date with the whole state of a message from a `message` frame. */
export function applyMessage(el, message) {
  el.dataset.id = message.id;
  el.dataset.status = message.status;
  const text = message.content ?? "";
  const streaming = message.status === "streaming";
  showRendered(contentOf(el), message.html, message.tail, streaming);
  setSource(el, text);
  if (streaming) replies.sources.set(message.id, text);
  else replies.sources.delete(message.id);
  if (message.role === "assistant") replies.seqs.set(message.id, message.seq ?? 0);
  setTyping(el, streaming && !text);
  setPart(el, "message-note", "");
  const failed = message.status === "error" ? "The reply failed." : "";
  setPart(el, "message-error", message.error || failed);
  setPart(el, "message-status", statusLabel(message.status));
  renderAttachments(el, message.attachments);
  renderThinking(el, message);
  renderSteps(el, message.tools, message.status);
  branches.decorate(el, message);
  renderUsage(el, message.usage, message.status);
  // Only `history` frames and page loads say the user's vote.
  if ("rating" in message) showRating(el, message.rating);
}
