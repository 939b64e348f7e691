// Versions of a conversation (docs/protocol.md: `regenerate`, `edit`, `branch`, answered with `history`):
// the Regenerate and Edit buttons, the inline editor of a user message, and the "‹ 2 / 3 ›" switcher. The
// same controls as templates/chat/_message.html renders on page load; one delegated listener serves both.

import { sourceOf } from "./rendered.js";

const NOT_CONNECTED = "Not connected to the server. Wait for the connection to come back, then try again.";

function make(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(className, text, label) {
  const node = make("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  return node;
}

function actionsOf(el) {
  return el.querySelector(":scope > .message-actions");
}

// ---------------------------------------------------------------------------------------------------------
// Controls in a message's actions

function createSwitcher() {
  const group = make("div", "branch-switcher");
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Versions");
  const position = make("span", "branch-position");
  position.setAttribute("aria-hidden", "true");
  group.append(
    button("branch-previous", "‹", "Previous version"),
    position,
    make("span", "visually-hidden branch-spoken"),
    button("branch-next", "›", "Next version"),
  );
  return group;
}

function setTarget(control, id, busy) {
  control.dataset.branchTarget = id ?? "";
  control.disabled = busy || !id;
}

function renderSwitcher(actions, branch, busy) {
  let group = actions.querySelector(":scope > .branch-switcher");
  if (!branch) return; // not known in this frame: keep what is shown
  if (branch.count < 2) {
    group?.remove();
    return;
  }
  if (!group) {
    group = createSwitcher();
    actions.prepend(group);
  }
  group.querySelector(".branch-position").textContent = `${branch.index} / ${branch.count}`;
  group.querySelector(".branch-spoken").textContent = `Version ${branch.index} of ${branch.count}`;
  setTarget(group.querySelector(".branch-previous"), branch.previous, busy);
  setTarget(group.querySelector(".branch-next"), branch.next, busy);
}

/** Add or remove one action button, keeping it ahead of the usage line. */
function toggleAction(actions, className, wanted, build) {
  const existing = actions.querySelector(`:scope > .${className}`);
  if (!wanted) {
    existing?.remove();
    return null;
  }
  if (existing) return existing;
  const node = build();
  actions.insertBefore(node, actions.querySelector(":scope > .message-usage"));
  return node;
}

function regenerateButton() {
  const node = button("message-action regenerate-button", "Regenerate");
  node.title = "Write a new version of this reply";
  return node;
}

function editButton() {
  return button("message-action edit-button", "Edit", "Edit message");
}

// ---------------------------------------------------------------------------------------------------------
// The inline editor of a user message

function createEditor(text) {
  const form = make("form", "message-editor");
  const label = make("label", "visually-hidden", "Edit your message");
  const area = make("textarea", "message-editor-input");
  area.id = `edit-${crypto.randomUUID()}`;
  label.htmlFor = area.id;
  area.value = text;
  area.rows = Math.min(12, Math.max(2, text.split("\n").length));
  area.setAttribute("aria-keyshortcuts", "Control+Enter Meta+Enter Escape");
  const error = make("p", "message-error message-editor-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const row = make("div", "message-editor-actions");
  const hint = make("span", "message-editor-hint", "Ctrl+Enter to send, Esc to cancel");
  const cancel = button("button button--ghost message-editor-cancel", "Cancel");
  const submit = make("button", "button button--primary message-editor-send", "Send");
  submit.type = "submit";
  row.append(hint, cancel, submit);
  form.append(label, area, error, row);
  return form;
}

function showEditorError(form, text) {
  const error = form.querySelector(".message-editor-error");
  error.textContent = text;
  error.hidden = !text;
  const submit = form.querySelector(".message-editor-send");
  submit.disabled = false;
  submit.textContent = "Send";
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Wire the version controls of `transcript`. `send(frame)` is false when the socket is not open; `onHint`
 * shows a message under the composer; `announce` speaks to screen readers; `input` is the composer.
 */
export function initBranches({ transcript, scroller, input, send, onHint, announce }) {
  const pending = new Map(); // client_id -> the editor form of an edit, or null for a regenerate
  let switched = null; // {target, direction, top}: the switch this tab asked for, until its `history` arrives
  let busy = false;

  function start(frame, form = null) {
    // An editor keeps its client_id, so sending again after a dropped connection cannot store the edit twice.
    const clientId = form ? (form.dataset.clientId ||= crypto.randomUUID()) : crypto.randomUUID();
    if (!send({ ...frame, client_id: clientId })) return false;
    pending.set(clientId, form);
    return true;
  }

  function regenerate(el) {
    if (!start({ type: "regenerate", id: el.dataset.id })) onHint(NOT_CONNECTED);
  }

  function switchTo(control) {
    const el = control.closest(".message");
    const top = el.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
    if (!send({ type: "branch", id: control.dataset.branchTarget })) {
      onHint(NOT_CONNECTED);
      return;
    }
    const direction = control.classList.contains("branch-previous") ? "previous" : "next";
    switched = { target: control.dataset.branchTarget, direction, top };
  }

  function openEditor(el) {
    const open = el.querySelector(":scope > .message-editor");
    if (open) {
      open.querySelector("textarea").focus();
      return;
    }
    const form = createEditor(sourceOf(el));
    el.querySelector(":scope > .message-content").after(form);
    el.classList.add("is-editing");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitEdit(el, form);
    });
    form.querySelector(".message-editor-cancel").addEventListener("click", () => closeEditor(el));
    form.addEventListener("keydown", (event) => onEditorKeydown(event, el, form));
    const area = form.querySelector("textarea");
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  function closeEditor(el) {
    const form = el.querySelector(":scope > .message-editor");
    for (const [clientId, pendingForm] of pending) if (pendingForm === form) pending.delete(clientId);
    form?.remove();
    el.classList.remove("is-editing");
    el.querySelector(":scope > .message-actions .edit-button")?.focus();
  }

  function onEditorKeydown(event, el, form) {
    if (event.isComposing) return;
    if (event.key === "Escape") {
      // Claimed here so the page does not read this Esc as "stop the reply".
      event.preventDefault();
      event.stopPropagation();
      closeEditor(el);
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  }

  function submitEdit(el, form) {
    const text = form.querySelector("textarea").value.trim();
    const hasImages = el.querySelector(":scope > .message-attachments") !== null;
    if (!text && !hasImages) {
      showEditorError(form, "Write something to send, or cancel.");
      return;
    }
    if (!start({ type: "edit", id: el.dataset.id, text }, form)) {
      showEditorError(form, NOT_CONNECTED);
      return;
    }
    showEditorError(form, "");
    const submit = form.querySelector(".message-editor-send");
    submit.disabled = true;
    submit.textContent = "Sending…";
  }

  transcript.addEventListener("click", (event) => {
    const control = event.target.closest(".regenerate-button, .edit-button, .branch-switcher button");
    const el = control?.closest(".message[data-id]");
    if (!el || control.disabled) return;
    if (control.classList.contains("regenerate-button")) regenerate(el);
    else if (control.classList.contains("edit-button")) openEditor(el);
    else switchTo(control);
  });

  /**
   * Once `history` replaced the list: a switched message stays where it was on screen, with focus on its
   * switcher; after our own regenerate or edit the new reply at the end is what to watch; after another tab's
   * change the message the user was reading stays put.
   */
  function restoreAfterHistory({ anchor, ownAction, pinned }) {
    const lostFocus = !document.activeElement || document.activeElement === document.body;
    const el = anchor && transcript.querySelector(`.message[data-id="${CSS.escape(anchor.target)}"]`);
    if (el) {
      scroller.scrollTop += el.getBoundingClientRect().top - scroller.getBoundingClientRect().top - anchor.top;
      if (anchor.direction && lostFocus) focusSwitcher(el, anchor.direction);
      return;
    }
    if (ownAction || pinned) scroller.scrollTop = scroller.scrollHeight;
    if (ownAction && lostFocus) input.focus({ preventScroll: true });
  }

  function focusSwitcher(el, direction) {
    const group = el.querySelector(".branch-switcher");
    if (!group) return;
    const same = group.querySelector(`.branch-${direction}`);
    (same.disabled ? group.querySelector("button:not([disabled])") ?? same : same).focus({ preventScroll: true });
    announce(group.querySelector(".branch-spoken").textContent);
  }

  /** The first message at least partly on screen, to keep in place when another tab changed the list. */
  function visibleAnchor() {
    const top = scroller.getBoundingClientRect().top;
    for (const el of transcript.querySelectorAll(".message[data-id]")) {
      const box = el.getBoundingClientRect();
      if (box.bottom > top) return { target: el.dataset.id, top: box.top - top };
    }
    return null;
  }

  return {
    /** Switcher and Regenerate/Edit buttons for the state of a message from a `message` frame. */
    decorate(el, message) {
      const actions = actionsOf(el);
      if (!actions) return;
      renderSwitcher(actions, message.branch, busy);
      const finishedReply = message.role === "assistant" && message.status !== "streaming";
      const regenerate = toggleAction(actions, "regenerate-button", finishedReply, regenerateButton);
      const edit = toggleAction(actions, "edit-button", message.role === "user", editButton);
      for (const control of [regenerate, edit]) if (control) control.disabled = busy;
    },

    /** Nothing that changes the list while a reply is being written (the server would refuse it as busy). */
    setBusy(value) {
      if (value === busy) return;
      busy = value;
      for (const control of transcript.querySelectorAll(".regenerate-button, .edit-button")) {
        control.disabled = busy;
      }
      for (const control of transcript.querySelectorAll(".branch-switcher button")) {
        control.disabled = busy || !control.dataset.branchTarget;
      }
    },

    /** A regenerate or edit sent from here, not yet answered. */
    pending: () => pending.size > 0,

    /**
     * A `message` frame naming one of our client_ids: an edit sent again after a reconnect was stored the
     * first time, so it is answered with the stored message instead of `history`.
     */
    acknowledge(clientId) {
      if (!pending.has(clientId)) return;
      const form = pending.get(clientId);
      pending.delete(clientId);
      if (form?.isConnected) closeEditor(form.closest(".message"));
    },

    /** Show an `error` answering one of our frames; false when `clientId` is not ours. */
    takeError(clientId, text) {
      if (!pending.has(clientId)) return false;
      const form = pending.get(clientId);
      pending.delete(clientId);
      if (form?.isConnected) showEditorError(form, text);
      else onHint(text);
      return true;
    },

    /** Call before a `history` frame replaces the list; returns what to call after it. */
    beforeHistory(pinned) {
      const ownAction = pending.size > 0;
      pending.clear();
      const anchor = switched ?? (ownAction || pinned ? null : visibleAnchor());
      switched = null;
      return () => restoreAfterHistory({ anchor, ownAction, pinned });
    },

    /** After a reconnect nothing sent before is still being answered: let the user send again. */
    connectionReset() {
      for (const form of pending.values()) {
        if (form?.isConnected) showEditorError(form, "The connection dropped. Send again.");
      }
      pending.clear();
      switched = null;
    },
  };
}
