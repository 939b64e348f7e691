// The page's place among the user's conversations: the list in the sidebar, the sidebar as a drawer on
// phones, and the page title. The per-conversation menu is static/chat/sidebar.js.

import { giveUp } from "./socket.js";

const APP_NAME = "Claude Chat";

let els = null;
let loginUrl = "";

/** `elements`: list, listEmpty, heading, menu, sidebar, backdrop; `login`: the login page's URL. */
export function initNav(elements, login) {
  els = elements;
  loginUrl = login;
  els.menu.addEventListener("click", () => setSidebar(!sidebarOpen()));
  els.backdrop.addEventListener("click", () => setSidebar(false));
}

/** A conversation created on this page goes first in the list, as the current one. */
export function addConversationLink({ id, url, title }) {
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

export function moveConversationToTop(id) {
  const link = id && els.list.querySelector(`.conversation-link[data-id="${CSS.escape(id)}"]`);
  const item = link?.closest("li");
  if (item && item !== els.list.firstElementChild) els.list.prepend(item);
}

export function renameConversation(id, title) {
  // The conversation may be listed among the pinned ones or the recent ones.
  for (const link of document.querySelectorAll(`.conversation-link[data-id="${CSS.escape(id)}"]`)) {
    link.textContent = title;
  }
}

export function setPageTitle(title) {
  document.title = `${title} · ${APP_NAME}`;
  els.heading.textContent = title;
}

export function sidebarOpen() {
  return document.body.classList.contains("sidebar-open");
}

export function setSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  els.menu.setAttribute("aria-expanded", String(open));
  if (open) els.sidebar.querySelector("a, button")?.focus();
  else if (els.sidebar.contains(document.activeElement)) els.menu.focus();
}

/** True when a fetch was answered by a redirect to the login page. */
export function sentToLogin(response) {
  return response.redirected && response.url.includes(loginUrl);
}

/** The session ended: stop reconnecting and log in again, coming back to this page. */
export function goToLogin() {
  giveUp();
  const next = encodeURIComponent(location.pathname);
  location.assign(`${loginUrl}?next=${next}`);
}
