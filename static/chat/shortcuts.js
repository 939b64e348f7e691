// Keyboard shortcuts for the chat page: "/" search, "?" this list, Ctrl+Shift+O new chat, Shift+Esc the
// message box (Esc stops a reply, in chat.js). None fires while the user is typing in a field.

function typing(target) {
  return target.closest?.("input, textarea, select, [contenteditable='true']") != null;
}

export function initShortcuts({ dialog, search, input, newChatUrl }) {
  for (const opener of document.querySelectorAll("[data-open-shortcuts]")) {
    opener.addEventListener("click", () => dialog.showModal());
  }
  // Capture phase: Shift+Esc must be claimed before chat.js reads Esc as "stop the reply".
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey) return;
    const modifier = event.ctrlKey || event.metaKey;
    if (modifier && event.shiftKey && event.key.toLowerCase() === "o") {
      event.preventDefault();
      location.assign(newChatUrl);
    } else if (event.key === "Escape" && event.shiftKey) {
      event.preventDefault();
      input.focus();
    } else if (modifier || typing(event.target) || dialog.open) {
      return;
    } else if (event.key === "/" && search) {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "?") {
      event.preventDefault();
      dialog.showModal();
    }
  }, true);
}
