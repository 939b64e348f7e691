// The sidebar's per-conversation menu: rename inline, pin, archive, delete (after a confirmation dialog).
// Endpoints answer JSON to fetch (chat/web/manage.py). Links nav.js adds for new conversations get a menu
// button too, and a link whose title nav.js changes gets its button relabelled, through a MutationObserver, so
// nav.js needs no knowledge of this module.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

async function post(url, fields = {}) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    body: new URLSearchParams(fields),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || "That did not work. Please try again.");
  return body;
}

function button(text, action, extra = {}) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = text;
  el.dataset.action = action;
  Object.assign(el, extra);
  return el;
}

function download(item, extension, text) {
  const link = document.createElement("a");
  link.href = `${new URL(item.querySelector(".conversation-link").href).pathname}export.${extension}`;
  link.download = "";
  link.textContent = text;
  return link;
}

export function initSidebar({ sidebar, confirmDialog, currentId, indexUrl }) {
  const pinnedList = sidebar.querySelector("#pinned-list");
  const recentList = sidebar.querySelector("#conversation-list");
  const pinnedSection = sidebar.querySelector("#pinned-section");
  let openMenu = null;

  function addMenuButton(item) {
    const link = item.querySelector(".conversation-link");
    if (!link) return;
    let toggle = item.querySelector(".conversation-menu-button");
    if (!toggle) {
      item.classList.add("conversation-item");
      toggle = button("⋯", "menu", { className: "conversation-menu-button", title: "Options" });
      toggle.setAttribute("aria-haspopup", "menu");
      toggle.setAttribute("aria-expanded", "false");
      item.append(toggle);
    }
    // Renamed here, or retitled by the server after the first reply: the label follows the title.
    toggle.setAttribute("aria-label", `Options for ${link.textContent}`);
  }

  function closeMenu() {
    if (!openMenu) return;
    openMenu.previousElementSibling?.setAttribute("aria-expanded", "false");
    openMenu.remove();
    openMenu = null;
  }

  function showMenu(item, toggle) {
    closeMenu();
    const pinned = item.dataset.pinned === "1";
    const menu = document.createElement("div");
    menu.className = "conversation-menu";
    menu.setAttribute("role", "menu");
    for (const entry of [
      button("Rename", "rename"),
      button(pinned ? "Unpin" : "Pin", "pin"),
      button("Archive", "archive"),
      download(item, "md", "Export Markdown"),
      download(item, "json", "Export JSON"),
      button("Delete…", "delete", { className: "danger" }),
    ]) {
      entry.setAttribute("role", "menuitem");
      menu.append(entry);
    }
    toggle.after(menu);
    toggle.setAttribute("aria-expanded", "true");
    openMenu = menu;
    menu.querySelector("button").focus();
  }

  function startRename(item) {
    const link = item.querySelector(".conversation-link");
    const field = document.createElement("input");
    field.className = "rename-input";
    field.value = link.textContent;
    field.maxLength = 120;
    field.setAttribute("aria-label", "New title");
    link.hidden = true;
    link.after(field);
    field.focus();
    field.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      try {
        if (save && field.value.trim() && field.value.trim() !== link.textContent) {
          const { title } = await post(`${new URL(link.href, location.href).pathname}rename/`, { title: field.value });
          link.textContent = title;
          if (link.dataset.id === currentId) document.title = `${title} · Claude Chat`;
        }
      } catch (error) {
        alertFailure(error);
      } finally {
        field.remove();
        link.hidden = false;
      }
    };
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    field.addEventListener("blur", () => finish(true));
  }

  function alertFailure(error) {
    sidebar.querySelector(".sidebar-error")?.remove();
    const note = document.createElement("p");
    note.className = "sidebar-error";
    note.setAttribute("role", "alert");
    note.textContent = error.message;
    recentList.before(note);
  }

  function place(item, pinned) {
    item.dataset.pinned = pinned ? "1" : "0";
    (pinned ? pinnedList : recentList).prepend(item);
    pinnedSection.hidden = !pinnedList.children.length;
  }

  function leave(item, id) {
    item.remove();
    pinnedSection.hidden = !pinnedList.children.length;
    if (id === currentId) location.assign(indexUrl);
  }

  async function act(item, action) {
    const link = item.querySelector(".conversation-link");
    const id = link.dataset.id;
    // The conversation's own URL is the prefix of its housekeeping endpoints (chat/urls.py).
    const base = new URL(link.href, location.href).pathname;
    closeMenu();
    try {
      if (action === "rename") startRename(item);
      else if (action === "pin") {
        const { pinned } = await post(`${base}pin/`, { pinned: item.dataset.pinned === "1" ? "0" : "1" });
        place(item, pinned);
      } else if (action === "archive") {
        await post(`${base}archive/`, { archived: "1" });
        leave(item, id);
      } else if (action === "delete") {
        confirmDialog.querySelector("[data-title]").textContent = item.querySelector(".conversation-link").textContent;
        confirmDialog.returnValue = "";
        confirmDialog.showModal();
        confirmDialog.addEventListener("close", async () => {
          if (confirmDialog.returnValue !== "delete") return;
          try {
            await post(`${base}delete/`);
            leave(item, id);
          } catch (error) {
            alertFailure(error);
          }
        }, { once: true });
      }
    } catch (error) {
      alertFailure(error);
    }
  }

  sidebar.addEventListener("click", (event) => {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    const item = target.closest("li");
    if (target.dataset.action === "menu") {
      if (openMenu && target.nextElementSibling === openMenu) closeMenu();
      else showMenu(item, target);
    } else {
      act(item, target.dataset.action);
    }
  });
  document.addEventListener("click", (event) => {
    if (openMenu && !event.target.closest(".conversation-item")) closeMenu();
  });
  sidebar.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && openMenu) {
      event.preventDefault();
      const toggle = openMenu.previousElementSibling;
      closeMenu();
      toggle?.focus();
    }
  });

  for (const list of [pinnedList, recentList]) {
    for (const item of list.children) addMenuButton(item);
    // subtree: a title set with textContent replaces the link's text node.
    new MutationObserver(() => {
      for (const item of list.children) addMenuButton(item);
    }).observe(list, { childList: true, subtree: true });
  }

  const importFile = sidebar.querySelector("#import-file");
  importFile?.addEventListener("change", () => {
    if (importFile.files.length) importFile.form.submit();
  });

  revealTarget();
}

const REVEAL_MS = 3000;

/** Scroll to the message named in the URL's fragment (a search result) and mark it for a moment. */
function revealTarget() {
  const target = location.hash.startsWith("#m-") && document.getElementById(location.hash.slice(1));
  if (!target) return;
  const reveal = () => target.scrollIntoView({ block: "center" });
  reveal();
  target.classList.add("message--target");
  // The target starts the rendered page, so the older page loads above it at once and moves it off screen:
  // keep it in view until the user scrolls themselves or the page settles.
  const observer = new MutationObserver(reveal);
  observer.observe(target.parentElement, { childList: true });
  const stop = () => observer.disconnect();
  setTimeout(stop, REVEAL_MS);
  for (const type of ["wheel", "touchstart", "keydown"]) addEventListener(type, stop, { once: true });
}
