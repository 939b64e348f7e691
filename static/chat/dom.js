// The one element helper the scripts that build message parts share.

/** A new `tag` element with `className`, and `text` as its text when given (never parsed as HTML). */
export function make(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
