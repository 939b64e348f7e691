"""The settings dialog in the browser: a bad value gets the server's message under its field, a good one is
saved and is still there after a reload, and the header shows when thinking is on."""

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = "/tmp/settings.png"


def test_settings_are_checked_saved_and_kept(page, alice, settings):
    settings.CHAT_MODELS = ["claude-4-5-sonnet", "claude-4-5-haiku"]
    conv = Conversation.objects.create(owner=alice, title="Settings")
    Message.objects.create(conversation=conv, role="user", content="hello")
    # Script errors and CSP refusals; the expected 400 of the bad save is a "Failed to load resource" line.
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda line: "Content Security Policy" in line.text and problems.append(line.text))
    log_in(page, "alice", "alice-password-1")
    page.goto(conv.get_absolute_url())

    dialog = page.locator("#settings-dialog")
    indicator = page.locator("#thinking-indicator")
    expect(indicator).to_be_hidden()
    page.click("#settings-button")
    expect(dialog).to_be_visible()
    expect(page.locator("#settings-max_tokens")).to_have_attribute("placeholder", str(settings.INFERENCE_MAX_TOKENS))
    expect(page.locator("#settings-model_id option")).to_have_text(
        ["Default (claude-4-5-sonnet)", "claude-4-5-sonnet", "claude-4-5-haiku"]
    )
    expect(page.locator("#settings-thinking_budget")).to_be_hidden()

    page.fill("#settings-temperature", "1.5")
    page.click("#settings-form [type=submit]")
    expect(page.locator("#settings-temperature-errors")).to_have_text("Temperature must be a number from 0 to 1.")
    expect(page.locator("#settings-temperature")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#settings-temperature")).to_be_focused()
    page.screenshot(path=SCREENSHOT)
    assert Conversation.objects.get(pk=conv.pk).temperature is None

    # Thinking runs at the model's default temperature: a temperature with it is refused too.
    page.fill("#settings-temperature", "0.4")
    page.select_option("#settings-model_id", "claude-4-5-haiku")
    page.check("#settings-thinking")
    page.fill("#settings-thinking_budget", "1500")
    page.click("#settings-form [type=submit]")
    expect(page.locator("#settings-temperature-errors")).to_contain_text("default temperature")
    page.fill("#settings-temperature", "")
    page.click("#settings-form [type=submit]")
    expect(dialog).to_be_hidden()
    expect(indicator).to_be_visible()

    page.reload()
    expect(page.locator("#thinking-indicator")).to_be_visible()
    page.click("#settings-button")
    expect(page.locator("#settings-temperature")).to_have_value("")
    expect(page.locator("#settings-temperature-errors")).to_be_hidden()
    expect(page.locator("#settings-model_id")).to_have_value("claude-4-5-haiku")
    expect(page.locator("#settings-thinking")).to_be_checked()
    expect(page.locator("#settings-thinking_budget")).to_have_value("1500")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    conv.refresh_from_db()
    assert (conv.temperature, conv.model_id, conv.thinking, conv.thinking_budget) == (
        None, "claude-4-5-haiku", True, 1500
    )
    assert problems == []


def test_a_new_chat_opens_its_settings_and_a_started_one_keeps_its_own(page, alice, api, settings):
    settings.CHAT_AUTO_TITLES = False
    log_in(page, "alice", "alice-password-1")
    page.goto("/")
    page.click("#settings-button")
    expect(page.locator("#settings-dialog")).to_be_visible()
    assert page.url.endswith(f"{Conversation.objects.get(owner=alice).get_absolute_url()}")  # no #settings left
    page.check("#settings-thinking")
    page.click("#settings-form [type=submit]")
    expect(page.locator("#thinking-indicator")).to_be_visible()
    assert Conversation.objects.get(owner=alice).thinking is True

    # A chat started by its first message on the new-chat page: Settings opens that conversation's.
    page.goto("/")
    page.fill("#message-input", "Hello there")
    page.keyboard.press("Enter")
    expect(page.locator(".message[data-role=assistant][data-status=complete]")).to_have_count(1)
    page.click("#settings-button")
    expect(page.locator("#settings-dialog")).to_be_visible()
    assert Conversation.objects.filter(owner=alice).count() == 2
    started = Conversation.objects.filter(owner=alice).exclude(title="").get()
    assert page.url.endswith(started.get_absolute_url())
