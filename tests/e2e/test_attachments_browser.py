"""A user attaches images by the file chooser, by pasting and by dropping, sends them, sees them after a reload,
and gets a clear message for a file that is not an image."""

import io

import pytest
from playwright.sync_api import expect
from PIL import Image

from chat.models import Attachment, ImageBlob, Message
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

# A PNG drawn in the page, for paste and drop: the browser builds the File itself.
MAKE_FILE = """async ([name, colour]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 48;
  const context = canvas.getContext("2d");
  context.fillStyle = colour;
  context.fillRect(0, 0, 64, 48);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  window.__file = new File([blob], name, { type: "image/png" });
}"""

PASTE = """() => {
  const data = new DataTransfer();
  data.items.add(window.__file);
  document.getElementById("message-input").dispatchEvent(
    new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
}"""

DRAG = """(type) => {
  const data = new DataTransfer();
  data.items.add(window.__file);
  document.getElementById("main").dispatchEvent(
    new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


def png_file(name, size=(40, 30), colour="red"):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return {"name": name, "mimeType": "image/png", "buffer": out.getvalue()}


def loaded(image):
    return image.evaluate("img => img.complete && img.naturalWidth > 0")


def test_attach_by_the_file_chooser_send_and_see_it_after_a_reload(page, alice, api):
    log_in(page, "alice", "alice-password-1")
    with page.expect_file_chooser() as chooser:
        page.click("#attach-button")
    chooser.value.set_files(png_file("red square.png"))

    preview = page.locator(".attachment-preview")
    expect(preview).to_have_attribute("data-state", "done")
    expect(preview.locator(".attachment-thumb")).to_be_visible()
    page.fill("#message-input", "What colour is this?")
    page.keyboard.press("Enter")

    expect(page.locator("#attachment-previews")).to_be_hidden()
    user = page.locator(".message[data-role=user]")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)
    expect(reply).to_contain_text("You attached 1 image: a JPEG image of 40×30 pixels.")
    attachment = Attachment.objects.get()
    assert attachment.message == Message.objects.get(role="user")
    link = user.locator(".message-attachments a")
    expect(link).to_have_attribute("href", attachment.get_absolute_url())
    expect(link).to_have_attribute("target", "_blank")
    assert loaded(link.locator("img"))

    page.reload()
    image = page.locator(".message[data-role=user] .message-attachments img")
    expect(image).to_have_attribute("alt", "red square.png")
    assert loaded(image)
    expect(page.locator(".message[data-role=user] .message-content")).to_have_text("What colour is this?")


def test_paste_an_image_and_send_it_without_text(page, alice, api):
    log_in(page, "alice", "alice-password-1")
    page.evaluate(MAKE_FILE, ["pasted.png", "blue"])

    page.evaluate(PASTE)
    expect(page.locator(".attachment-preview")).to_have_attribute("data-state", "done")
    page.focus("#message-input")
    page.keyboard.press("Enter")

    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)
    expect(reply).to_contain_text("You attached 1 image: a JPEG image of 64×48 pixels.")
    assert Message.objects.get(role="user").content == ""
    expect(page.locator("#conversation-list a.conversation-link").first).to_have_text("pasted.png")


def test_drop_an_image_on_the_page(page, alice, api):
    log_in(page, "alice", "alice-password-1")
    page.evaluate(MAKE_FILE, ["dropped.png", "green"])

    page.evaluate(DRAG, "dragenter")
    expect(page.locator("#drop-overlay")).to_be_visible()
    page.evaluate(DRAG, "drop")

    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(page.locator(".attachment-preview")).to_have_attribute("data-state", "done")
    assert Attachment.objects.get().filename == "dropped.png"


def test_a_file_that_is_not_an_image_shows_why_and_the_rest_is_sent(page, alice, api):
    log_in(page, "alice", "alice-password-1")
    notes = {"name": "notes.png", "mimeType": "image/png", "buffer": b"Meeting notes: buy milk.\n"}
    page.set_input_files("#file-input", [notes, png_file("good.png")])

    bad = page.locator(".attachment-preview", has_text="notes.png")
    expect(bad).to_have_attribute("data-state", "error")
    expect(bad.locator(".attachment-error")).to_have_text("This file is not an image.")
    expect(page.locator(".attachment-preview").last).to_have_attribute("data-state", "done")
    page.fill("#message-input", "Only the good one")
    page.keyboard.press("Enter")

    expect(page.locator(".message[data-role=user] .message-attachments img")).to_have_count(1)
    expect(page.locator(".message[data-role=assistant]").last).to_contain_text("You attached 1 image", timeout=20000)
    assert (Attachment.objects.count(), ImageBlob.objects.count()) == (1, 1)


def test_send_waits_for_uploads_and_remove_cancels_one(page, alice, api):
    held = []
    page.route("**/attachments/", lambda route: held.append(route))
    log_in(page, "alice", "alice-password-1")
    page.set_input_files("#file-input", png_file("slow.png"))

    preview = page.locator(".attachment-preview")
    expect(preview).to_have_attribute("data-state", "uploading")
    expect(preview.locator("progress")).to_be_attached()
    page.fill("#message-input", "Not yet")
    page.keyboard.press("Enter")
    expect(page.locator("#composer-hint")).to_have_text("Wait for the images to finish uploading, then send.")
    assert page.locator(".message").count() == 0

    page.click(".attachment-remove")
    expect(preview).to_have_count(0)
    expect(page.locator("#attachment-previews")).to_be_hidden()
    expect(page.locator("#composer-hint")).to_have_text("")
    assert Attachment.objects.count() == 0


def test_at_most_twenty_images_per_message(page, alice, api):
    log_in(page, "alice", "alice-password-1")
    page.set_input_files("#file-input", [png_file(f"{n}.png", colour=(n * 10, 0, 0)) for n in range(21)])

    expect(page.locator(".attachment-preview")).to_have_count(20)
    expect(page.locator("#composer-hint")).to_have_text("You can attach up to 20 images to one message.")
    expect(page.locator(".attachment-preview[data-state=done]")).to_have_count(20, timeout=20000)
    page.click("#send-button")

    expect(page.locator(".message[data-role=assistant]").last).to_contain_text("You attached 20 images", timeout=20000)
    assert Attachment.objects.filter(message__isnull=False).count() == 20
