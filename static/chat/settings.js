// The conversation settings dialog: filled from GET <url> each time it opens (so it never shows stale values),
// saved with a form POST to the same URL. Error messages are the server's, shown under their fields.

const dialog = document.getElementById("settings-dialog");
const form = document.getElementById("settings-form");
const opener = document.getElementById("settings-button");
const indicator = document.getElementById("thinking-indicator");
const statusLine = document.getElementById("settings-status");
const budgetField = document.getElementById("settings-thinking_budget-field");
const saveButton = form?.querySelector("[type=submit]");
const fields = form?.elements;

const TEXT_FIELDS = ["system_prompt", "model_id", "temperature", "max_tokens", "thinking_budget"];
const CHECKBOXES = ["prompt_caching", "tools_enabled", "thinking"];
const LOAD_FAILED = "The settings could not be loaded. Check your connection and try again.";
const SAVE_FAILED = "The settings could not be saved. Check your connection and try again.";
const LOGGED_OUT = "You have been logged out: reload the page, log in and try again.";

function request(init = {}) {
  return fetch(form.action, {
    credentials: "same-origin",
    ...init,
    headers: { Accept: "application/json", "X-CSRFToken": fields.csrfmiddlewaretoken.value },
  });
}

function showStatus(text) {
  statusLine.textContent = text;
  statusLine.hidden = !text;
}

function errorList(name) {
  return document.getElementById(`settings-${name}-errors`);
}

function clearErrors() {
  showStatus("");
  for (const name of TEXT_FIELDS) {
    errorList(name).replaceChildren();
    errorList(name).hidden = true;
    fields[name].removeAttribute("aria-invalid");
  }
}

function showErrors(errors) {
  let first = null;
  for (const [name, messages] of Object.entries(errors)) {
    const list = TEXT_FIELDS.includes(name) ? errorList(name) : null;
    if (!list) {
      showStatus(messages.join(" "));
      continue;
    }
    list.replaceChildren(...messages.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    list.hidden = false;
    fields[name].setAttribute("aria-invalid", "true");
    first ??= fields[name];
  }
  // A budget error must be visible even when thinking is off.
  if (errors.thinking_budget) budgetField.hidden = false;
  first?.focus();
}

function fillModels(models, defaultModel) {
  const select = fields.model_id;
  select.options[0].textContent = `Default (${defaultModel})`;
  select.length = 1;
  for (const model of models) select.add(new Option(model, model));
}

function fill({ settings, defaults, models, limits }) {
  fillModels(models, defaults.model_id);
  fields.system_prompt.maxLength = limits.system_prompt_chars;
  fields.max_tokens.max = limits.max_tokens;
  fields.thinking_budget.min = limits.thinking_budget_min;
  fields.thinking_budget.max = limits.max_tokens - 1;
  fields.system_prompt.placeholder = defaults.system_prompt;
  fields.temperature.placeholder = defaults.temperature ?? "Model default";
  fields.max_tokens.placeholder = defaults.max_tokens;
  fields.thinking_budget.placeholder = defaults.thinking_budget;
  for (const name of TEXT_FIELDS) fields[name].value = settings[name] ?? "";
  for (const name of CHECKBOXES) fields[name].checked = settings[name];
  showBudget();
}

function showBudget() {
  budgetField.hidden = !fields.thinking.checked && errorList("thinking_budget").hidden;
}

async function open() {
  clearErrors();
  opener.disabled = true;
  try {
    const response = await request();
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    fill(await response.json());
    saveButton.disabled = false;
  } catch {
    // Saving what the form held before would overwrite settings it never showed.
    saveButton.disabled = true;
    showStatus(LOAD_FAILED);
  } finally {
    opener.disabled = false;
  }
  dialog.showModal();
}

async function post() {
  saveButton.disabled = true;
  try {
    return await request({ method: "POST", body: new URLSearchParams(new FormData(form)) });
  } finally {
    saveButton.disabled = false;
  }
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  let response;
  try {
    response = await post();
  } catch {
    showStatus(SAVE_FAILED);
    return;
  }
  const payload = response.headers.get("Content-Type")?.includes("json") ? await response.json() : {};
  if (payload.settings) {
    indicator.hidden = !payload.settings.thinking;
    dialog.close();
  } else if (payload.errors) {
    showErrors(payload.errors);
  } else {
    // Logged out: redirected to the login page. A 403 is a CSRF token that a new login has replaced.
    const expired = response.redirected || response.status === 403;
    showStatus(expired ? LOGGED_OUT : SAVE_FAILED);
  }
}

/** A new chat has no settings to edit yet: start the conversation, then open its page with the dialog. */
async function openForNewChat() {
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  // The first message may have started the conversation already (the address changed, the page did not).
  let url = location.pathname.match(/^\/c\/[0-9a-f-]{36}\/$/) ? location.pathname : null;
  opener.disabled = true;
  try {
    if (!url) {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const response = await fetch(config.createUrl, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      url = (await response.json()).url;
    }
    location.assign(`${url}#settings`);
  } catch {
    opener.disabled = false;
    opener.title = LOAD_FAILED;
  }
}

if (dialog) {
  opener.addEventListener("click", open);
  form.addEventListener("submit", save);
  fields.thinking.addEventListener("change", showBudget);
  form.querySelector("[data-settings-cancel]").addEventListener("click", () => dialog.close());
  // Esc closes the dialog only: on the document it would also stop a reply being written (chat.js).
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Escape") event.stopPropagation();
  });
  if (location.hash === "#settings") {
    history.replaceState(history.state, "", location.pathname + location.search);
    open();
  }
} else {
  opener.addEventListener("click", openForNewChat);
}
