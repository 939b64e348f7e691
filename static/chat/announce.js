// The page's polite live region: short news for screen readers (a reply finished, a version switched).

let live = null;

export function initAnnounce(region) {
  live = region;
}

export function announce(text) {
  // Clearing first makes screen readers repeat an announcement identical to the previous one.
  live.textContent = "";
  setTimeout(() => {
    live.textContent = text;
  }, 50);
}
