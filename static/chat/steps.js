// What a reply did besides writing its answer: the model's extended thinking, the tools it called, and what it
// cost (tokens and time). The same DOM as templates/chat/_message.html renders on page load. Tool arguments and
// results, and thinking while it streams, are model text: they are only ever set with textContent; the one HTML
// string used here is the server-sanitised `reasoning_html`.

import { make } from "./dom.js";

const numbers = new Intl.NumberFormat();
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const seconds = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function child(parent, selector) {
  return parent.querySelector(`:scope > ${selector}`);
}

// ---------------------------------------------------------------------------------------------------------
// Thinking

function createThinking() {
  const details = make("details", "thinking");
  const summary = document.createElement("summary");
  summary.append(make("span", "thinking-label"), make("span", "thinking-live"));
  // The live line repeats the newest words of the thinking: useful to see, noise to hear at every delta.
  child(summary, ".thinking-live").setAttribute("aria-hidden", "true");
  details.append(summary, make("div", "thinking-content"));
  return details;
}

/** The thinking section of a reply, created above its tool steps and answer when missing. */
function thinkingOf(el) {
  let details = child(el, ".thinking");
  if (!details) {
    details = createThinking();
    el.insertBefore(details, child(el, ".tool-steps") ?? child(el, ".message-content"));
  }
  return details;
}

function setThinkingState(details, streaming) {
  details.dataset.streaming = String(streaming);
  details.querySelector(".thinking-label").textContent = streaming ? "Thinking…" : "Thought process";
  if (!streaming) details.querySelector(".thinking-live").textContent = "";
}

function showLiveLine(details, text) {
  const end = text.trimEnd();
  details.querySelector(".thinking-live").textContent = end.slice(end.lastIndexOf("\n") + 1);
}

/** Show a reply's whole thinking: plain text while it streams, the server's rendering once it is final. */
export function renderThinking(el, { reasoning, reasoning_html: html, status }) {
  if (!reasoning) {
    child(el, ".thinking")?.remove();
    return;
  }
  const details = thinkingOf(el);
  const streaming = status === "streaming";
  const content = details.querySelector(".thinking-content");
  setThinkingState(details, streaming);
  content.classList.toggle("markdown", !streaming);
  content.classList.toggle("thinking-content--plain", streaming);
  if (streaming) {
    content.textContent = reasoning;
    showLiveLine(details, reasoning);
  } else {
    content.innerHTML = html ?? "";
  }
}

/** Append streamed thinking (a `delta` frame's `reasoning`) to a reply. */
export function appendThinking(el, text) {
  const details = thinkingOf(el);
  if (details.dataset.streaming !== "true") {
    setThinkingState(details, true);
    const fresh = details.querySelector(".thinking-content");
    fresh.className = "thinking-content thinking-content--plain";
    fresh.replaceChildren();
  }
  const content = details.querySelector(".thinking-content");
  // One text node that grows, rather than a node per delta.
  if (!content.firstChild) content.append("");
  content.firstChild.appendData(text);
  showLiveLine(details, content.firstChild.data);
}

// ---------------------------------------------------------------------------------------------------------
// Tool steps

/** Arguments arrive as a JSON string (or already parsed); shown indented when they parse, as written if not. */
export function formatArguments(raw) {
  if (raw === null || raw === undefined || raw === "") return "";
  try {
    const value = typeof raw === "string" ? JSON.parse(raw) : raw;
    return JSON.stringify(value, null, 2);
  } catch {
    return String(raw);
  }
}

function stepLabel(step, running) {
  if (running) return `Calling ${step.name}…`;
  if (step.is_error) return `${step.name} failed`;
  return `Used ${step.name}`;
}

function stepSection(title, className, text) {
  const section = make("div", "tool-step-section");
  section.append(make("p", "tool-step-heading", title), make("pre", className, text));
  return section;
}

function createStep(step, replyStreaming) {
  // A step left without a result by a reply that has finished (stopped, failed) is not running any more.
  const running = replyStreaming && step.status !== "done" && step.result == null;
  const details = make("details", "tool-step");
  details.dataset.stepId = step.id;
  details.dataset.status = running ? "running" : "done";
  if (step.is_error) details.dataset.error = "";
  const summary = document.createElement("summary");
  summary.append(make("span", "tool-step-icon"), make("span", "tool-step-label", stepLabel(step, running)));
  summary.firstChild.setAttribute("aria-hidden", "true");
  const body = make("div", "tool-step-body");
  const args = formatArguments(step.arguments);
  if (args) body.append(stepSection("Arguments", "tool-step-arguments", args));
  if (step.result != null) {
    body.append(stepSection(step.is_error ? "Error" : "Result", "tool-step-result", step.result));
  } else if (!args) {
    body.append(make("p", "tool-step-heading", running ? "Waiting for the result…" : "No result."));
  }
  details.append(summary, body);
  return details;
}

function stepsOf(el) {
  let box = child(el, ".tool-steps");
  if (!box) {
    box = make("div", "tool-steps");
    el.insertBefore(box, child(el, ".message-content"));
  }
  return box;
}

/** Insert a tool step, or replace the one with its id, keeping it open if the user had opened it. */
export function upsertStep(el, step, replyStreaming = true) {
  const box = stepsOf(el);
  const node = createStep(step, replyStreaming);
  const old = Array.from(box.children).find((item) => item.dataset.stepId === String(step.id));
  if (old) {
    node.open = old.open;
    old.replaceWith(node);
  } else {
    box.append(node);
  }
}

/** Show all the tool steps of a reply (a `message` frame's `tools`). */
export function renderSteps(el, tools, status) {
  if (!tools?.length) {
    child(el, ".tool-steps")?.remove();
    return;
  }
  const known = new Set(tools.map((step) => String(step.id)));
  for (const item of Array.from(child(el, ".tool-steps")?.children ?? [])) {
    if (!known.has(item.dataset.stepId)) item.remove();
  }
  for (const step of tools) upsertStep(el, step, status === "streaming");
}

// ---------------------------------------------------------------------------------------------------------
// Usage

function known(value) {
  return value !== null && value !== undefined && value !== "";
}

/** "1,234 → 567 tokens · 0.8 s to first token · 4.2 s", leaving out what is not known. */
export function formatUsage(usage) {
  const { prompt_tokens: prompt, completion_tokens: completion, ttft_ms: ttft, duration_ms: duration } = usage;
  const parts = [];
  if (known(prompt) && known(completion)) {
    parts.push(`${numbers.format(prompt)} → ${numbers.format(completion)} tokens`);
  } else if (known(completion)) {
    parts.push(`${numbers.format(completion)} tokens`);
  }
  if (known(ttft)) parts.push(`${seconds.format(ttft / 1000)} s to first token`);
  if (known(duration)) parts.push(`${seconds.format(duration / 1000)} s`);
  return parts.join(" · ");
}

function usageTitle({ prompt_tokens: prompt, completion_tokens: completion }) {
  if (!known(prompt) || !known(completion)) return "";
  return `${numbers.format(prompt)} tokens in the prompt, ${numbers.format(completion)} in the reply`;
}

/** The usage line in a finished reply's actions; none while it streams or when nothing is known. */
export function renderUsage(el, usage, status) {
  const actions = child(el, ".message-actions");
  let line = actions?.querySelector(":scope > .message-usage");
  const text = status === "streaming" || !usage ? "" : formatUsage(usage);
  if (!text) {
    line?.remove();
    return;
  }
  if (!line) {
    line = make("span", "message-usage");
    actions.append(line);
  }
  line.textContent = text;
  line.title = usageTitle(usage);
  line.hidden = false;
}

function usageFromData(node) {
  const read = (name) => (known(node.dataset[name]) ? Number(node.dataset[name]) : null);
  return {
    prompt_tokens: read("promptTokens"),
    completion_tokens: read("completionTokens"),
    ttft_ms: read("ttftMs"),
    duration_ms: read("durationMs"),
  };
}

/** The conversation's token totals in the page header (`usage_totals` of the frame that finishes a reply). */
export function showConversationUsage(node, { prompt_tokens: prompt, completion_tokens: completion }) {
  if (!node) return;
  const [inPrompts, inReplies] = [prompt ?? 0, completion ?? 0];
  node.hidden = inPrompts + inReplies === 0;
  node.textContent = `${compact.format(inPrompts + inReplies)} tokens`;
  node.title =
    `This conversation: ${numbers.format(inPrompts)} tokens in prompts, ${numbers.format(inReplies)} in replies`;
}

/**
 * Finish what the server rendered: its templates have no number formatting or JSON indenting, so usage
 * figures come as data attributes and tool arguments as written. Safe to run again on the same nodes.
 */
export function enhanceRendered(root, conversationUsage) {
  for (const line of root.querySelectorAll(".message-usage[data-usage]")) {
    const usage = usageFromData(line);
    line.textContent = formatUsage(usage);
    line.title = usageTitle(usage);
    line.hidden = !line.textContent;
    delete line.dataset.usage; // done: later frames update the text directly
  }
  for (const pre of root.querySelectorAll(".tool-step-arguments")) pre.textContent = formatArguments(pre.textContent);
  if (conversationUsage?.dataset.usage !== undefined) {
    showConversationUsage(conversationUsage, usageFromData(conversationUsage));
    delete conversationUsage.dataset.usage;
  }
}
