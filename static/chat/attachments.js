// Images in messages: attach them (button, drag and drop, paste), upload them as soon as they are added,
// with progress, preview them in the composer, and show the images of sent messages. The server validates and re-encodes
// every file and says why it refused one (docs/protocol.md, "Attachments").

const GENERIC_FAILURE = "The upload failed. Check your connection and try again.";
const FAILURES = {
  401: "Your session has ended. Log in again to attach images.",
  403: "This page is out of date. Reload it to attach images.",
};

/**
 * The attachments of the message being written.
 *
 * `onChange()` is called whenever an upload starts, ends or is removed; `onHint(text)` shows a message
 * about the whole strip (for example, too many images). Uploads run one at a time, so the images keep
 * the order in which they were added (the server orders a message's images by upload).
 */
export function createAttachments({ uploadUrl, csrfToken, maxFiles, maxBytes, onChange, onHint }) {
  const els = {
    button: document.getElementById("attach-button"),
    input: document.getElementById("file-input"),
    list: document.getElementById("attachment-previews"),
    overlay: document.getElementById("drop-overlay"),
  };
  const items = [];
  let current = null; // the item uploading now
  let dragDepth = 0;

  function add(files) {
    for (const file of files) {
      if (items.filter((item) => item.el.dataset.state !== "error").length >= maxFiles) {
        onHint(`You can attach up to ${maxFiles} images to one message.`);
        break;
      }
      const item = { file, attachment: null, xhr: null, objectUrl: null, el: null };
      item.el = previewElement(item);
      items.push(item);
      els.list.append(item.el);
      if (file.size > maxBytes) fail(item, `This file is too large (max ${+(maxBytes / 1048576).toFixed(2)} MB).`);
    }
    els.list.hidden = items.length === 0;
    next();
    onChange();
  }

  function previewElement(item) {
    const li = document.createElement("li");
    li.className = "attachment-preview";
    li.dataset.state = "waiting";
    const thumb = document.createElement("img");
    thumb.className = "attachment-thumb";
    thumb.alt = "";
    if (item.file) {
      item.objectUrl = URL.createObjectURL(item.file);
      thumb.src = item.objectUrl;
      // A file the browser cannot draw (not an image, HEIC, damaged) gets a plain tile instead.
      thumb.addEventListener("error", () => thumb.replaceWith(blankThumb()), { once: true });
    } else {
      thumb.src = item.attachment.url;
    }
    const name = document.createElement("span");
    name.className = "attachment-name";
    name.textContent = displayName(item);
    const progress = document.createElement("progress");
    progress.className = "attachment-progress";
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", `Uploading ${displayName(item)}`);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attachment-remove";
    remove.setAttribute("aria-label", `Remove ${displayName(item)}`);
    remove.textContent = "×";
    remove.addEventListener("click", () => discard(item));
    li.append(thumb, name, progress, remove);
    return li;
  }

  function blankThumb() {
    const blank = document.createElement("span");
    blank.className = "attachment-thumb is-blank";
    return blank;
  }

  function displayName(item) {
    return item.file?.name || item.attachment?.filename || "image";
  }

  /** Start the next waiting upload, if none is running. */
  function next() {
    if (current) return;
    current = items.find((item) => item.el.dataset.state === "waiting") ?? null;
    if (current) upload(current);
  }

  function upload(item) {
    item.el.dataset.state = "uploading";
    const progress = item.el.querySelector(".attachment-progress");
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", uploadUrl);
    xhr.responseType = "json";
    xhr.setRequestHeader("X-CSRFToken", csrfToken);
    xhr.setRequestHeader("X-Filename", encodeURIComponent(item.file.name || "image"));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = event.loaded / event.total;
    });
    // Sent: the server is checking and re-encoding the image; show an indeterminate bar meanwhile.
    xhr.upload.addEventListener("load", () => progress.removeAttribute("value"));
    for (const type of ["load", "error", "abort"]) xhr.addEventListener(type, () => finished(item, xhr));
    xhr.send(item.file);
    onChange();
  }

  function finished(item, xhr) {
    item.xhr = null;
    if (current === item) current = null;
    // An item removed meanwhile (its upload aborted) is already gone from the strip.
    if (items.includes(item)) {
      if (xhr.status === 201 && xhr.response?.id) succeed(item, xhr.response);
      else fail(item, failureMessage(xhr));
    }
    next();
    onChange();
  }

  function succeed(item, attachment) {
    item.attachment = attachment;
    item.el.dataset.state = "done";
    item.el.querySelector(".attachment-progress")?.remove();
  }

  function fail(item, message) {
    item.el.dataset.state = "error";
    item.el.querySelector(".attachment-progress")?.remove();
    const error = document.createElement("p");
    error.className = "attachment-error";
    error.setAttribute("role", "alert");
    error.textContent = message;
    item.el.querySelector(".attachment-remove").before(error);
  }

  function discard(item) {
    const index = items.indexOf(item);
    if (index === -1) return;
    items.splice(index, 1);
    item.xhr?.abort();
    // An upload the server kept as a draft is deleted now rather than at its expiry.
    if (item.attachment) {
      fetch(item.attachment.url, { method: "DELETE", headers: { "X-CSRFToken": csrfToken }, keepalive: true }).catch(
        () => {},
      );
    }
    release(item);
    els.list.hidden = items.length === 0;
    // Keep keyboard focus in the strip (the removed button had it), or return it to the attach button.
    const neighbour = items[Math.min(index, items.length - 1)];
    (neighbour?.el.querySelector(".attachment-remove") ?? els.button).focus();
    onChange();
  }

  function release(item) {
    if (item.objectUrl) URL.revokeObjectURL(item.objectUrl);
    item.el.remove();
  }

  // The file chooser, drops and pastes ------------------------------------------------------------------

  function hasFiles(event) {
    return Array.from(event.dataTransfer?.types ?? []).includes("Files");
  }

  function onDragEnter(event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    els.overlay.hidden = false;
  }

  function onDragOver(event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }

  function onDragLeave(event) {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) els.overlay.hidden = true;
  }

  function onDrop(event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    els.overlay.hidden = true;
    add(event.dataTransfer.files);
  }

  function onPaste(event) {
    const data = event.clipboardData;
    const files = Array.from(data?.files ?? []).filter((file) => file.type.startsWith("image/"));
    // Office apps put a picture of the copied text next to the text itself: text wins, as the user meant.
    if (!files.length || data.types.includes("text/plain")) return;
    event.preventDefault();
    add(files);
  }

  els.button.addEventListener("click", () => els.input.click());
  els.input.addEventListener("change", () => {
    add(els.input.files);
    els.input.value = ""; // choosing the same file again must fire `change` again
  });
  document.addEventListener("dragenter", onDragEnter);
  document.addEventListener("dragover", onDragOver);
  document.addEventListener("dragleave", onDragLeave);
  document.addEventListener("drop", onDrop);
  document.addEventListener("paste", onPaste);

  return {
    /** True while any image is waiting or uploading: the message must not be sent yet. */
    uploading: () => items.some((item) => ["waiting", "uploading"].includes(item.el.dataset.state)),
    /** The uploaded images ready to send. */
    count: () => items.filter((item) => item.attachment).length,
    /** Empty the strip and return the uploaded images (`{id, url, ...}`) for a message; failed ones go. */
    take() {
      const taken = items.filter((item) => item.attachment).map((item) => item.attachment);
      items.splice(0).forEach(release);
      els.list.hidden = true;
      onChange();
      return taken;
    },
    /** Put the images of a message that could not be sent back into the strip. */
    restore(attachments) {
      for (const attachment of attachments) {
        const item = { file: null, attachment, xhr: null, objectUrl: null, el: null };
        item.el = previewElement(item);
        succeed(item, attachment);
        items.push(item);
        els.list.append(item.el);
      }
      els.list.hidden = items.length === 0;
      onChange();
    },
  };
}

/** The server's own words when it gave some (they are written to be shown), else ours. */
function failureMessage(xhr) {
  if (xhr.status === 0) return GENERIC_FAILURE;
  return xhr.response?.error || FAILURES[xhr.status] || `The upload failed (HTTP ${xhr.status}).`;
}

/** Show `attachments` (`[{url, filename, width, height}]`) above the text of a message element. */
export function renderAttachments(el, attachments) {
  let box = el.querySelector(":scope > .message-attachments");
  const urls = (attachments ?? []).map((attachment) => attachment.url);
  if (!urls.length) {
    box?.remove();
    return;
  }
  // Unchanged (a repeated `message` frame, or images rendered by the server): keep the loaded images.
  if (box && Array.from(box.querySelectorAll("a"), (link) => link.getAttribute("href")).join() === urls.join()) return;
  box?.remove();
  box = document.createElement("div");
  box.className = "message-attachments";
  for (const attachment of attachments) box.append(thumbnailLink(attachment));
  el.insertBefore(box, el.querySelector(":scope > .message-content"));
}

function thumbnailLink({ url, filename, width, height }) {
  const link = document.createElement("a");
  link.className = "message-attachment";
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener";
  link.title = "Open full size";
  const img = document.createElement("img");
  img.src = url;
  img.alt = filename || "Attached image";
  img.width = width;
  img.height = height;
  img.loading = "lazy";
  img.decoding = "async";
  link.append(img);
  return link;
}
