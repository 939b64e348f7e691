// The chat page: one WebSocket per open conversation (docs/protocol.md), optimistic sends that survive
// reconnects, and replies streamed into the transcript as HTML rendered and sanitised by the server. This
// module looks the page's elements up once and wires the modules of each concern together.

import { announce, initAnnounce } from "./announce.js";
import { createAttachments } from "./attachments.js";
import { initBranches } from "./branches.js";
import { canStop, initComposer, stopReply, updateBusy } from "./composer.js";
import { initFeedback } from "./feedback.js";
import { initFrames, onFrame, resume } from "./frames.js";
import { clearHint, initMessageBox, scheduleResize, showHint } from "./message_box.js";
import { initMessages, replies } from "./messages.js";
import { goToLogin, initNav, setSidebar, sidebarOpen } from "./nav.js";
import { bindCopyButtons, watchOlder } from "./rendered.js";
import { initScrolling, scrollToBottom } from "./scrolling.js";
import { initShortcuts } from "./shortcuts.js";
import { initSidebar } from "./sidebar.js";
import { connect, initSocket, reconnectNow, sendFrame } from "./socket.js";
import { state } from "./state.js";
import { enhanceRendered } from "./steps.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
// The feedback URL of one message, with this id standing in for the message's.
const FEEDBACK_ID_SLOT = "00000000-0000-0000-0000-000000000000";

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
  newChat: document.getElementById("new-chat"),
  confirmDelete: document.getElementById("confirm-delete"),
  shortcuts: document.getElementById("shortcuts-dialog"),
  search: document.getElementById("search-input"),
};

state.conversation = config.conversation;

// The images of the message being written (static/chat/attachments.js).
const attachments = createAttachments({
  uploadUrl: config.uploadUrl,
  csrfToken,
  maxFiles: config.maxAttachments,
  maxBytes: config.maxUploadBytes,
  onChange: () => {
    if (!attachments.uploading()) clearHint("uploading");
  },
  onHint: (text) => showHint(text, "attachments"),
});

// Regenerate, edit and the version switcher (static/chat/branches.js).
const branches = initBranches({
  transcript: els.transcript,
  scroller: els.scroller,
  input: els.input,
  send: sendFrame,
  onHint: (text) => showHint(text, "server"),
  announce,
});

function setConnectionStatus(text, fatal = false) {
  els.connection.hidden = !text;
  els.connection.textContent = text ?? "";
  els.connection.classList.toggle("is-fatal", fatal);
}

function onNotFound() {
  setConnectionStatus("This conversation does not exist.", true);
  els.emptyState.hidden = true;
  els.input.disabled = true;
  els.send.disabled = true;
}

function onDocumentKeydown(event) {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  if (sidebarOpen()) {
    setSidebar(false);
  } else if (canStop()) {
    event.preventDefault();
    stopReply();
  }
}

function init() {
  initAnnounce(els.live);
  initMessageBox({ input: els.input, hint: els.hint, maxChars: config.maxChars });
  initMessages({ transcript: els.transcript, emptyState: els.emptyState, branches });
  initComposer({ els, attachments, branches, createUrl: config.createUrl, csrfToken });
  initScrolling({ scroller: els.scroller, jump: els.jump, input: els.input });
  initNav(els, els.main.dataset.loginUrl);
  document.addEventListener("keydown", onDocumentKeydown);
  bindCopyButtons(els.transcript, (el) => replies.sources.get(el.dataset.id));
  window.addEventListener("online", reconnectNow);
  // The page for another URL is a different page: after Back/Forward, load it rather than fake it.
  window.addEventListener("popstate", () => location.reload());

  els.send.disabled = false;
  scheduleResize();
  scrollToBottom();
  enhanceRendered(els.transcript, els.usage);
  const resetOlder = watchOlder(els.transcript, els.scroller, () => {
    enhanceRendered(els.transcript);
    updateBusy();
  });
  initFrames({ els, branches, resetOlder });
  initSocket({
    url: () => state.conversation && `${config.wsPrefix}${state.conversation}/`,
    onOpen: () => {
      setConnectionStatus(null);
      resume();
    },
    onFrame,
    onDrop: () => setConnectionStatus("Reconnecting…"),
    onLoggedOut: goToLogin,
    onNotFound,
  });
  updateBusy();
  connect();
}

init();
initSidebar({
  sidebar: els.sidebar,
  confirmDialog: els.confirmDelete,
  currentId: state.conversation,
  indexUrl: els.newChat.href,
});
initFeedback(els.transcript, (id) => els.transcript.dataset.feedbackUrl.replace(FEEDBACK_ID_SLOT, id), csrfToken);
initShortcuts({ dialog: els.shortcuts, search: els.search, input: els.input, newChatUrl: els.newChat.href });
