// Versions of a conversation (docs/protocol.md: `regenerate`, `edit`, `branch`, answered with `history`):
// the Regenerate and Edit buttons, the inline editor of a user message, and the "‹ 2 / 3 ›" switcher. The
// same controls as templates/chat/_message.html renders on page load; one delegated listener serves both.

import {
  actionsOf, createEditor, editButton, regenerateButton, renderSwitcher, showEditorError, toggleAction,
} from "./branch_controls.js";
import { sourceOf } from "./rendered.js";

const NOT_CONNECTED = "Not connected to the server. Wait for the connection to come back, then try again.";

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
