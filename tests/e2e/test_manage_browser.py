"""Managing conversations in the browser: search and open a result at its message, the sidebar menu (rename,
pin, delete), downloading an export, and rating a reply."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Feedback, Message
from chat.turns.records import PAGE_SIZE as MESSAGE_PAGE_SIZE
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

# Set SCREENSHOTS=/some/dir to keep pictures of each step for a visual review.
SHOTS = os.environ.get("SCREENSHOTS")


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png")


def long_chat(owner, title, needle_at=2):
    conv = Conversation.objects.create(owner=owner, title=title)
    for n in range(MESSAGE_PAGE_SIZE + 20):
        Message.objects.create(conversation=conv, role="user" if n % 2 == 0 else "assistant",
                               content="the axolotl regrows its limbs" if n == needle_at else f"filler message {n}")
    return conv


def test_search_finds_an_old_message_and_opens_the_conversation_at_it(page, alice):
    conv = long_chat(alice, "Amphibians")
    target = conv.messages.get(content__contains="axolotl")
    log_in(page, "alice", "alice-password-1")
    page.keyboard.press("/")
    expect(page.locator("#search-input")).to_be_focused()
    page.keyboard.type("axolotl")
    page.keyboard.press("Enter")
    result = page.locator(".search-result-link")
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text("axolotl")
    shot(page, "search-results")
    result.click()
    page.wait_for_url(f"**/c/{conv.public_id}/?at={target.public_id}#m-{target.public_id}")
    message = page.locator(f"#m-{target.public_id}")
    expect(message).to_be_in_viewport()
    expect(message).to_have_class("message message--user message--target")
    # The two older messages load above it as the top comes into view; the message must stay on screen.
    expect(page.locator(".message")).to_have_count(MESSAGE_PAGE_SIZE + 20)
    expect(message).to_be_in_viewport()
    shot(page, "search-opened-at-message")


def test_rename_pin_and_delete_from_the_sidebar_menu(page, alice):
    first = Conversation.objects.create(owner=alice, title="First chat")
    Conversation.objects.create(owner=alice, title="Second chat")
    log_in(page, "alice", "alice-password-1")
    item = page.locator("#conversation-list li", has_text="First chat")

    item.hover()
    item.locator(".conversation-menu-button").click()
    shot(page, "sidebar-menu")
    item.get_by_role("menuitem", name="Rename").click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Renamed chat")
    page.keyboard.press("Enter")
    expect(page.locator(".conversation-link", has_text="Renamed chat")).to_be_visible()

    renamed = page.locator("li", has_text="Renamed chat")
    renamed.hover()
    renamed.locator(".conversation-menu-button").click()
    renamed.get_by_role("menuitem", name="Pin").click()
    expect(page.locator("#pinned-list li")).to_have_text("Renamed chat⋯")
    expect(page.locator("#pinned-section")).to_be_visible()
    shot(page, "sidebar-pinned")

    pinned = page.locator("#pinned-list li")
    pinned.hover()
    pinned.locator(".conversation-menu-button").click()
    pinned.get_by_role("menuitem", name="Delete…").click()
    dialog = page.locator("#confirm-delete")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Renamed chat")
    shot(page, "delete-confirm")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".conversation-link", has_text="Renamed chat")).to_have_count(0)
    expect(page.locator("#pinned-section")).to_be_hidden()
    page.reload()
    expect(page.locator(".conversation-link")).to_have_text(["Second chat"])
    assert not Conversation.objects.filter(pk=first.pk).exists()


def test_export_download_and_feedback_persist(page, alice, tmp_path):
    conv = Conversation.objects.create(owner=alice, title="Rated chat")
    Message.objects.create(conversation=conv, role="user", content="question")
    reply = Message.objects.create(conversation=conv, role="assistant", content="An **answer**.")
    log_in(page, "alice", "alice-password-1")
    page.goto(conv.get_absolute_url())

    with page.expect_download() as download_info:
        page.get_by_role("link", name="JSON").click()
    download = download_info.value
    assert download.suggested_filename.startswith("rated-chat-") and download.suggested_filename.endswith(".json")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert '"content": "An **answer**."' in path.read_text()

    message = page.locator(f"#m-{reply.public_id}")
    message.get_by_role("button", name="Bad reply").click()
    expect(message.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed", "true")
    message.locator(".feedback-form textarea").fill("Too short")
    shot(page, "feedback-comment")
    message.get_by_role("button", name="Send feedback").click()
    expect(message.locator(".feedback-form")).to_have_text("Thanks for the feedback.")
    vote = Feedback.objects.get()
    assert (vote.rating, vote.comment, vote.user) == (-1, "Too short", alice)

    page.reload()
    expect(page.locator(f"#m-{reply.public_id}").get_by_role("button", name="Bad reply")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    shot(page, "shortcuts-dialog")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts-dialog")).to_be_hidden()
