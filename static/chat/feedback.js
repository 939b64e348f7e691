// Thumbs up/down on replies, with an optional comment (POST /m/<id>/feedback/). Buttons come from the server
// template or from createActions() in rendered.js; one delegated listener serves both.

const MAX_COMMENT = 2000;

function post(url, csrfToken, fields) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    body: new URLSearchParams(fields),
  });
}

/** Show the user's vote (1, -1 or null) on a message element. */
export function showRating(el, rating) {
  const actions = el.querySelector(":scope > .message-actions");
  if (actions) showPressed(actions, rating);
}

function showPressed(actions, rating) {
  for (const button of actions.querySelectorAll(".feedback-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.rating === String(rating)));
  }
}

function commentForm(actions, send) {
  actions.parentElement.querySelector(":scope > .feedback-form")?.remove();
  const form = document.createElement("form");
  form.className = "feedback-form";
  const label = document.createElement("label");
  label.textContent = "Tell us more (optional)";
  const area = document.createElement("textarea");
  area.name = "comment";
  area.rows = 2;
  area.maxLength = MAX_COMMENT;
  label.append(area);
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.className = "button button--ghost";
  submit.textContent = "Send feedback";
  form.append(label, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!(await send(area.value))) return;
    const thanks = document.createElement("p");
    thanks.textContent = "Thanks for the feedback.";
    form.replaceChildren(thanks);
  });
  actions.after(form);
  area.focus();
}

/** Handle every thumbs button inside `transcript`; `urlFor(id)` is the feedback URL of a message. */
export function initFeedback(transcript, urlFor, csrfToken) {
  transcript.addEventListener("click", async (event) => {
    const button = event.target.closest(".feedback-button");
    const message = button?.closest(".message[data-id]");
    if (!message) return;
    const actions = button.closest(".message-actions");
    const rating = button.dataset.rating;
    const send = async (comment) => {
      const response = await post(urlFor(message.dataset.id), csrfToken, { rating, comment });
      if (response.ok) showPressed(actions, rating);
      return response.ok;
    };
    if (await send("")) commentForm(actions, send);
  });
}
