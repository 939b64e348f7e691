"""A user logs in, sends a message, watches the reply stream, reloads mid-reply and sees it finish."""

import pytest
from playwright.sync_api import expect

from chat.standin.api import Reply
from chat.models import Message
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = " ".join(f"token{i}" for i in range(120))


def test_reply_streams_and_survives_a_reload(page, alice, api):
    api.delay = 0.03
    api.enqueue(Reply(text=REPLY, chunk_size=8))
    log_in(page, "alice", "alice-password-1")

    page.fill("#message-input", "Stream something long")
    page.keyboard.press("Enter")
    expect(page.locator(".message[data-role=user] .message-content")).to_have_text("Stream something long")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".message-content")).to_contain_text("token5")
    # Text is visible while the reply is still being written.
    assert reply.get_attribute("data-status") == "streaming"
    assert "/c/" in page.url

    page.reload()
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=15000)
    expect(reply.locator(".message-content")).to_have_text(REPLY)
    stored = Message.objects.get(role="assistant")
    assert (stored.status, stored.content) == ("complete", REPLY)


def test_shift_enter_adds_a_line_and_stop_keeps_text(page, alice, api):
    api.delay = 0.05
    api.enqueue(Reply(text=REPLY, chunk_size=4))
    log_in(page, "alice", "alice-password-1")
    page.fill("#message-input", "line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    assert page.input_value("#message-input") == "line one\nline two"
    page.keyboard.press("Enter")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply.locator(".message-content")).to_contain_text("token2")
    page.keyboard.press("Escape")
    expect(reply).to_have_attribute("data-status", "stopped")
    stored = Message.objects.get(role="assistant")
    assert stored.status == "stopped" and REPLY.startswith(stored.content) and stored.content
    assert Message.objects.get(role="user").content == "line one\nline two"


def test_demo_badge_and_sidebar(page, alice, api, demo_model):
    log_in(page, "alice", "alice-password-1")
    expect(page.locator("#demo-badge")).to_be_visible()
    page.fill("#message-input", "What can you do?")
    page.keyboard.press("Enter")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)
    expect(reply.locator(".message-content")).to_contain_text("demo")
    expect(page.locator("#conversation-list a.conversation-link").first).to_contain_text("What can you do?")
