"""Tool steps, extended thinking, usage, regenerate, edit and switching between versions, in a real browser."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from chat.standin.api import Reply
from chat.models import Conversation, Message
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

USAGE_LINE = re.compile(r"^[\d,]+ → [\d,]+ tokens · \d+\.\d s to first token · \d+\.\d s$")


@pytest.fixture(autouse=True)
def _no_title_requests(settings):
    """A title request would take the next scripted reply; these conversations are titled already."""
    settings.CHAT_AUTO_TITLES = False


def open_conversation(page, alice, **fields):
    conv = Conversation.objects.create(owner=alice, title="Features", **fields)
    log_in(page, "alice", "alice-password-1")
    page.goto(conv.get_absolute_url())
    return conv


def send(page, text):
    page.fill("#message-input", text)
    page.keyboard.press("Enter")


def last_reply(page):
    return page.locator(".message[data-role=assistant]").last


def wait_complete(reply):
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)


def reply_to(page, text):
    """Send ``text`` and wait for the reply to finish; returns the reply and its tool steps."""
    send(page, text)
    reply = last_reply(page)
    wait_complete(reply)
    return reply, reply.locator(".tool-step")


def test_a_tool_call_shows_as_a_step_with_its_arguments_and_result(page, alice, api):
    api.delay = 0.03
    api.enqueue(Reply(text="Let me work that out.", tool_calls=[("calculator", {"expression": "6 * 7"})]))
    api.enqueue(Reply(text="Six times seven is **42**."))
    open_conversation(page, alice)
    reply, step = reply_to(page, "What is 6 times 7? Use the calculator.")

    expect(step).to_have_count(1)
    expect(step.locator("summary")).to_have_text("Used calculator")
    expect(step.locator(".tool-step-result")).to_be_hidden()  # collapsed until asked for
    step.locator("summary").click()
    expect(step.locator(".tool-step-arguments")).to_have_text('{\n  "expression": "6 * 7"\n}')
    expect(step.locator(".tool-step-result")).to_have_text("42")
    expect(reply.locator(".message-content")).to_contain_text("Six times seven is 42.")
    expect(reply.locator(".message-usage")).to_have_text(USAGE_LINE)
    expect(page.locator("#conversation-usage")).to_have_text(re.compile(r"^[\d.,K]+ tokens$"))

    page.reload()  # the server renders the same
    reply = last_reply(page)
    expect(reply.locator(".tool-step summary")).to_have_text("Used calculator")
    reply.locator(".tool-step summary").click()
    expect(reply.locator(".tool-step-arguments")).to_have_text('{\n  "expression": "6 * 7"\n}')
    expect(reply.locator(".tool-step-result")).to_have_text("42")


def test_the_demo_model_calls_a_tool_the_message_names(page, alice, demo_model):
    open_conversation(page, alice)
    reply, step = reply_to(page, "Please try the calculator")

    expect(step.locator("summary")).to_have_text("Used calculator")
    step.locator("summary").click()
    expect(step.locator(".tool-step-arguments")).to_contain_text('"expression"')
    expect(step.locator(".tool-step-result")).to_have_text("80")  # the schema's example, (2 + 3) * 4 ** 2
    expect(reply.locator(".message-content")).to_contain_text("The calculator tool returned")


def test_a_failed_tool_is_marked_and_its_error_shown_as_text(page, alice, api):
    api.enqueue(Reply(text="Trying.", tool_calls=[("calculator", {"expression": "<img src=x onerror=alert(1)>"})]))
    api.enqueue(Reply(text="That did not work."))
    open_conversation(page, alice)
    reply, step = reply_to(page, "Break the calculator")

    expect(step).to_have_attribute("data-error", "")
    expect(step.locator("summary")).to_have_text("calculator failed")
    step.locator("summary").click()
    expect(step.locator(".tool-step-arguments")).to_contain_text("<img src=x onerror=alert(1)>")
    expect(step.locator(".tool-step-result")).to_contain_text("calculator failed")
    assert step.locator("img").count() == 0


def test_thinking_streams_as_one_live_line_then_folds_into_a_section(page, alice, api):
    api.delay = 0.05
    thought = "First I read the question.\nThen I decide how to answer it."
    api.enqueue(Reply(text="Here is my answer.", reasoning=thought, chunk_size=6))
    open_conversation(page, alice, thinking=True)
    send(page, "Think before you answer")

    reply = last_reply(page)
    thinking = reply.locator(".thinking")
    expect(thinking.locator(".thinking-label")).to_have_text("Thinking…")
    expect(thinking.locator(".thinking-live")).not_to_be_empty()
    assert thinking.get_attribute("open") is None  # collapsed while it streams
    wait_complete(reply)
    expect(thinking.locator(".thinking-label")).to_have_text("Thought process")
    expect(thinking.locator(".thinking-content")).to_be_hidden()
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-content")).to_have_text(thought)
    expect(reply.locator(".message-content")).to_have_text("Here is my answer.")

    page.reload()
    thinking = last_reply(page).locator(".thinking")
    expect(thinking.locator(".thinking-label")).to_have_text("Thought process")
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-content")).to_contain_text("Then I decide how to answer it.")


def test_the_demo_model_thinks_when_thinking_is_on(page, alice, demo_model):
    open_conversation(page, alice, thinking=True)
    send(page, "What can you do?")
    reply = last_reply(page)
    wait_complete(reply)
    reply.locator(".thinking summary").click()
    expect(reply.locator(".thinking-content")).to_contain_text("The question is 'What can you do?'")


def test_a_stored_reply_renders_its_steps_usage_and_versions_on_page_load(page, alice):
    conv = Conversation.objects.create(owner=alice, title="Stored")
    question = Message.objects.create(conversation=conv, role="user", content="Add 2 and 2")
    first = Message.objects.create(conversation=conv, role="assistant", content="Old answer", parent=question,
                                   selected=False)
    reply = Message.objects.create(
        conversation=conv, role="assistant", content="It is **4**.", parent=question, reasoning="Simple *sum*.",
        tool_calls=[{"id": "call_1", "name": "calculator", "arguments": '{"expression":"2+2"}', "result": "4",
                     "is_error": False, "status": "done"}],
        prompt_tokens=1234, completion_tokens=567,
    )
    created = Message.objects.get(pk=reply.pk).created_at
    Message.objects.filter(pk=reply.pk).update(
        first_token_at=created + datetime.timedelta(milliseconds=800),
        finished_at=created + datetime.timedelta(milliseconds=4200),
    )
    log_in(page, "alice", "alice-password-1")
    page.goto(conv.get_absolute_url())

    el = page.locator(f".message[data-id='{reply.public_id}']")
    expect(el.locator(".thinking-label")).to_have_text("Thought process")
    el.locator(".thinking summary").click()
    expect(el.locator(".thinking-content em")).to_have_text("sum")  # rendered Markdown
    expect(el.locator(".tool-step summary")).to_have_text("Used calculator")
    el.locator(".tool-step summary").click()
    expect(el.locator(".tool-step-arguments")).to_have_text('{\n  "expression": "2+2"\n}')
    expect(el.locator(".message-usage")).to_have_text("1,234 → 567 tokens · 0.8 s to first token · 4.2 s")
    expect(el.locator(".branch-position")).to_have_text("2 / 2")
    expect(el.locator(".branch-previous")).to_have_attribute("data-branch-target", str(first.public_id))
    expect(el.locator(".branch-next")).to_be_disabled()
    expect(page.locator(f".message[data-id='{question.public_id}'] .edit-button")).to_have_count(1)


def test_regenerate_adds_a_version_and_the_switcher_goes_back_to_the_first(page, alice, api):
    api.enqueue(Reply(text="The first answer."))
    api.enqueue(Reply(text="A second, better answer."))
    open_conversation(page, alice)
    send(page, "Tell me something")
    reply = last_reply(page)
    wait_complete(reply)
    expect(reply.locator(".branch-switcher")).to_have_count(0)
    reply.get_by_role("button", name="Good reply").click()
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Escape")  # the optional comment form

    reply.locator(".regenerate-button").click()
    reply = last_reply(page)
    wait_complete(reply)
    expect(reply.locator(".message-content")).to_have_text("A second, better answer.")
    expect(reply.locator(".branch-position")).to_have_text("2 / 2")
    expect(page.locator(".message")).to_have_count(2)  # the new version replaced the old one on screen

    reply.get_by_role("button", name="Previous version").click()
    reply = last_reply(page)
    expect(reply.locator(".message-content")).to_have_text("The first answer.")
    expect(reply.locator(".branch-position")).to_have_text("1 / 2")
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed", "true")  # kept
    expect(reply.get_by_role("button", name="Next version")).to_be_focused()  # keyboard users stay in place
    page.keyboard.press("Enter")
    expect(last_reply(page).locator(".message-content")).to_have_text("A second, better answer.")


def test_controls_are_disabled_while_a_reply_streams(page, alice, api):
    api.delay = 0.05
    api.enqueue(Reply(text="Done."))
    api.enqueue(Reply(text=" ".join(f"word{i}" for i in range(80)), chunk_size=4))
    open_conversation(page, alice)
    send(page, "First")
    wait_complete(last_reply(page))
    send(page, "Second")
    expect(page.locator(".message[data-role=assistant]")).to_have_count(2)
    streaming = last_reply(page)
    expect(streaming).to_have_attribute("data-status", "streaming")
    expect(page.locator(".message[data-role=assistant]").first.locator(".regenerate-button")).to_be_disabled()
    expect(page.locator(".message[data-role=user]").first.locator(".edit-button")).to_be_disabled()
    wait_complete(streaming)
    expect(page.locator(".message[data-role=user]").first.locator(".edit-button")).to_be_enabled()


def test_editing_a_message_starts_a_new_branch_and_switching_back_restores_the_old(page, alice, api):
    api.enqueue(Reply(text="An answer about cats."))
    api.enqueue(Reply(text="An answer about dogs."))
    open_conversation(page, alice)
    send(page, "Tell me about cats")
    wait_complete(last_reply(page))

    question = page.locator(".message[data-role=user]").first
    question.hover()
    question.get_by_role("button", name="Edit message").click()
    editor = question.locator(".message-editor textarea")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Tell me about cats")
    editor.fill("Tell me about dogs")
    page.keyboard.press("Control+Enter")

    reply = last_reply(page)
    wait_complete(reply)
    expect(reply.locator(".message-content")).to_have_text("An answer about dogs.")
    question = page.locator(".message[data-role=user]").first
    expect(question.locator(".message-content")).to_have_text("Tell me about dogs")
    expect(question.locator(".branch-position")).to_have_text("2 / 2")
    expect(page.locator(".message")).to_have_count(2)

    question.get_by_role("button", name="Previous version").click()
    question = page.locator(".message[data-role=user]").first
    expect(question.locator(".message-content")).to_have_text("Tell me about cats")
    expect(question.locator(".branch-position")).to_have_text("1 / 2")
    expect(last_reply(page).locator(".message-content")).to_have_text("An answer about cats.")


def test_escape_cancels_an_edit_and_a_refused_edit_keeps_the_editor_open(page, alice, api, settings):
    api.enqueue(Reply(text="Short answer."))
    open_conversation(page, alice)
    send(page, "Short question")
    wait_complete(last_reply(page))
    question = page.locator(".message[data-role=user]").first

    question.hover()
    question.get_by_role("button", name="Edit message").click()
    page.keyboard.press("Escape")
    expect(question.locator(".message-editor")).to_have_count(0)
    expect(question.locator(".message-content")).to_have_text("Short question")
    expect(question.get_by_role("button", name="Edit message")).to_be_focused()
    expect(last_reply(page)).to_have_attribute("data-status", "complete")  # Esc did not reach "stop"

    settings.CHAT_MAX_MESSAGE_CHARS = 20
    page.keyboard.press("Enter")
    long_text = "This edit is far too long to be accepted"
    question.locator(".message-editor textarea").fill(long_text)
    question.get_by_role("button", name="Send").click()
    expect(question.locator(".message-editor .message-error")).to_contain_text("20")
    expect(question.locator(".message-editor textarea")).to_have_value(long_text)
    expect(question.get_by_role("button", name="Send")).to_be_enabled()
    assert Message.objects.filter(role="user").count() == 1
