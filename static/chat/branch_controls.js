// The version controls' elements: the "‹ 2 / 3 ›" switcher, the Regenerate and Edit buttons and the inline
// editor of a user message, built the same as templates/chat/_message.html and _branch_switcher.html render
// them on page load. What they do is static/chat/branches.js.

import { make } from "./dom.js";

function button(className, text, label) {
  const node = make("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  return node;
}

export function actionsOf(el) {
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

export function renderSwitcher(actions, branch, busy) {
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
export function toggleAction(actions, className, wanted, build) {
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

export function regenerateButton() {
  const node = button("message-action regenerate-button", "Regenerate");
  node.title = "Write a new version of this reply";
  return node;
}

export function editButton() {
  return button("message-action edit-button", "Edit", "Edit message");
}

// ---------------------------------------------------------------------------------------------------------
// The inline editor of a user message

export function createEditor(text) {
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

export function showEditorError(form, text) {
  const error = form.querySelector(".message-editor-error");
  error.textContent = text;
  error.hidden = !text;
  const submit = form.querySelector(".message-editor-send");
  submit.disabled = false;
  submit.textContent = "Send";
}
