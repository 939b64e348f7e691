// Server-rendered Markdown in the transcript: whole messages, streamed blocks, copy buttons, older pages.
// Every HTML string here comes from the server's sanitiser (chat/rendering/markdown.py); model text is never
// turned into HTML in the browser.

const COPIED_MS = 1500;

function tailOf(content) {
  let tail = content.querySelector(":scope > .md-tail");
  if (!tail) {
    tail = document.createElement("div");
    tail.className = "md-tail";
    content.append(tail);
  }
  return tail;
}

/** Replace a message's content with its rendered HTML; a streaming reply keeps its open block in a tail. */
export function showRendered(content, html, tail, streaming) {
  content.innerHTML = html ?? "";
  if (streaming) tailOf(content).innerHTML = tail ?? "";
}

/** Apply one delta: finished blocks go in before the tail, once; the tail is replaced when it changed. */
export function appendRendered(content, blocks, tail) {
  const tailEl = tailOf(content);
  if (blocks?.length) tailEl.insertAdjacentHTML("beforebegin", blocks.join(""));
  if (tail !== undefined) tailEl.innerHTML = tail;
}

/** The Markdown source of a message, kept in an inert <template> so copying gives what was written. */
export function setSource(el, text) {
  let template = el.querySelector(":scope > template.message-source");
  if (!template) {
    template = document.createElement("template");
    template.className = "message-source";
    el.append(template);
  }
  template.content.textContent = text;
}

export function sourceOf(el) {
  return el.querySelector(":scope > template.message-source")?.content.textContent ?? "";
}

export function createActions(role) {
  const actions = document.createElement("div");
  actions.className = "message-actions";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-message";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", "Copy message as Markdown");
  actions.append(copy);
  // The same thumbs as templates/chat/_feedback_buttons.html; static/chat/feedback.js handles them.
  if (role === "assistant") actions.append(...createFeedbackButtons());
  return actions;
}

function createFeedbackButtons() {
  return [["1", "Good reply"], ["-1", "Bad reply"]].map(([rating, label]) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "feedback-button";
    button.dataset.rating = rating;
    button.title = label;
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-pressed", "false");
    return button;
  });
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN address has no Clipboard API: fall back to a selected, off-screen textarea.
  const area = document.createElement("textarea");
  area.value = text;
  area.className = "clipboard-buffer";
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

async function copyWithFeedback(button, text) {
  const label = button.textContent;
  try {
    await writeClipboard(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => {
    button.textContent = label;
  }, COPIED_MS);
}

/** One listener for every copy button in the transcript, present and future. */
export function bindCopyButtons(transcript, liveSource) {
  transcript.addEventListener("click", (event) => {
    const codeButton = event.target.closest(".copy-code");
    if (codeButton) {
      const code = codeButton.closest(".codeblock")?.querySelector("code");
      // Highlighted code ends with the fence's newline; a copied snippet should not.
      copyWithFeedback(codeButton, (code?.textContent ?? "").replace(/\n$/, ""));
      return;
    }
    const messageButton = event.target.closest(".copy-message");
    if (messageButton) {
      const el = messageButton.closest(".message");
      copyWithFeedback(messageButton, liveSource(el) ?? sourceOf(el));
    }
  });
}

/**
 * Load older pages of the transcript when its top scrolls into view, keeping the reading position. Returns a
 * function to call with `has_older` when the whole list was replaced (a `history` frame).
 */
export function watchOlder(transcript, scroller, onLoaded) {
  if (!transcript.dataset.olderUrl) return () => {};
  const sentinel = document.createElement("div");
  sentinel.className = "older-sentinel";
  sentinel.setAttribute("aria-hidden", "true");
  transcript.before(sentinel);
  let more = transcript.dataset.hasOlder !== undefined;
  let loading = false;
  let generation = 0; // a page asked for before the list was replaced belongs to the old list
  const observer = new IntersectionObserver(async (entries) => {
    if (loading || !more || !entries.some((entry) => entry.isIntersecting)) return;
    loading = true;
    const asked = generation;
    try {
      const page = await loadOlder(transcript);
      if (asked !== generation || !page) return;
      prependKeepingPosition(transcript, scroller, page.html);
      more = page.has_older;
      onLoaded();
    } finally {
      loading = false;
    }
  }, { root: scroller, rootMargin: "600px 0px 0px 0px" });
  observer.observe(sentinel);
  return (hasOlder) => {
    generation += 1;
    more = hasOlder;
    // Observing again reports the sentinel's current state, so a top already in view loads at once.
    observer.unobserve(sentinel);
    observer.observe(sentinel);
  };
}

async function loadOlder(transcript) {
  const first = transcript.querySelector(".message[data-id]");
  if (!first) return null;
  const url = `${transcript.dataset.olderUrl}?before=${encodeURIComponent(first.dataset.id)}`;
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

function prependKeepingPosition(transcript, scroller, html) {
  const before = scroller.scrollHeight;
  transcript.insertAdjacentHTML("afterbegin", html);
  // Keep the messages the user is reading where they were on screen.
  scroller.scrollTop += scroller.scrollHeight - before;
}
