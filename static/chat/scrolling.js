// Following the transcript as it grows: while the user reads the latest message the view stays at the
// bottom; once they scroll up it stays put and "Jump to latest" offers the way back.

// How close to the bottom still counts as "reading the latest" (so small scroll jitters do not unpin).
const PIN_THRESHOLD_PX = 48;

let scroller = null;
let jump = null;
let input = null;
let pinned = true;
let scrollFrame = 0;

/** `input` gets focus back after "Jump to latest". */
export function initScrolling(options) {
  ({ scroller, jump, input } = options);
  scroller.addEventListener("scroll", onScroll, { passive: true });
  jump.addEventListener("click", jumpToLatest);
}

export function isPinned() {
  return pinned;
}

function distanceFromBottom() {
  const { scrollHeight, scrollTop, clientHeight } = scroller;
  return scrollHeight - scrollTop - clientHeight;
}

export function onScroll() {
  pinned = distanceFromBottom() <= PIN_THRESHOLD_PX;
  jump.hidden = pinned;
}

/** After the transcript grew: follow it while pinned, otherwise offer a way back down. */
export function followContent() {
  if (scrollFrame) return;
  scrollFrame = requestAnimationFrame(() => {
    scrollFrame = 0;
    if (pinned) scroller.scrollTop = scroller.scrollHeight;
    else jump.hidden = distanceFromBottom() <= PIN_THRESHOLD_PX;
  });
}

export function scrollToBottom(smooth = false) {
  pinned = true;
  jump.hidden = true;
  const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
  scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth && !reduced ? "smooth" : "auto" });
}

function jumpToLatest() {
  scrollToBottom(true);
  input.focus({ preventScroll: true });
}
