// The message box: it grows with its text, refuses text over the server's limit, and has one hint line
// under it that every part of the page can write to.

// Above this many characters the textarea is certainly taller than its cap, so it is not measured.
const MEASURE_LIMIT_CHARS = 4000;

let input = null;
let hint = null;
let maxChars = 0;
let hintKind = null;
let resizeFrame = 0;

/** `maxChars` is the server's limit, counted in code points. */
export function initMessageBox(options) {
  ({ input, hint, maxChars } = options);
  input.addEventListener("input", scheduleResize);
}

/**
 * Show `text` under the message box (null clears it). `kind` says who wrote it, so that its writer can
 * clear it later without wiping someone else's hint.
 */
export function showHint(text, kind = null) {
  hint.textContent = text ?? "";
  hintKind = text ? kind : null;
}

/** Clear the hint if `kind` wrote it. */
export function clearHint(kind) {
  if (hintKind === kind) showHint(null);
}

function charCount(text) {
  // The server counts code points; JS counts UTF-16 units. Only pay for the difference near the limit.
  if (text.length <= maxChars) return text.length;
  return text.length - (text.match(/[\uD800-\uDBFF]/g)?.length ?? 0);
}

/** Show or clear the "too long" message; true when the text is over the limit. */
export function checkLength() {
  const count = charCount(input.value);
  const over = count > maxChars;
  if (over) {
    input.setAttribute("aria-invalid", "true");
    const fmt = new Intl.NumberFormat();
    showHint(
      `This message is ${fmt.format(count)} characters long; the limit is ${fmt.format(maxChars)}. ` +
        "Shorten it to send.",
      "length",
    );
  } else {
    input.removeAttribute("aria-invalid");
    clearHint("length");
  }
  return over;
}

/** Fit the height to the text (and recheck the length) once per frame, however many edits came in. */
export function scheduleResize() {
  if (resizeFrame) return;
  resizeFrame = requestAnimationFrame(() => {
    resizeFrame = 0;
    resizeInput();
    checkLength();
  });
}

function resizeInput() {
  if (input.value.length > MEASURE_LIMIT_CHARS) {
    input.style.height = getComputedStyle(input).maxHeight;
    return;
  }
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight}px`;
}
