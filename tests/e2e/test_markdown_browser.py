"""Rendered replies in a real browser: Markdown while streaming, copy buttons, CSP, hostile input, long chats."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from chat.standin.api import Reply
from chat.models import Conversation, Message
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

CODE = 'def greet(name):\n    return f"Hello, {name}!"'
LONG_REPLY = "\n\n".join(
    ["## Overview", "Here is **bold** text and a list:", "- first item\n- second item\n- third item"]
    + [f"Paragraph {i}: " + "streamed words " * 12 for i in range(12)]
    + [f"```python\n{CODE}\n```", "| Name | Value |\n|------|------:|\n| alpha | 1 |\n| beta | 2 |", "The end."]
)

XSS_PAYLOADS = [
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 1">',
    "[js link](javascript:window.__xss=1)",
    "[mixed case](JaVaScRiPt:window.__xss=1)",
    "[entity](&#106;avascript:window.__xss=1)",
    "[data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    '<svg onload="window.__xss = 1"></svg>',
    '<iframe src="javascript:window.__xss=1"></iframe>',
    "![remote image](http://evil.example/pixel.png)",
    '![x](x" onerror="window.__xss=1)',
    '[quote breakout](http://x.example" onmouseover="window.__xss=1)',
    '<a href="javascript:window.__xss=1">raw anchor</a>',
    "[rtl](\u202ejavascript:window.__xss=1)",
    "<style>body { background: url(http://evil.example/bg.png) }</style>",
    '<link rel="stylesheet" href="http://evil.example/x.css">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    "`<script>window.__xss = 1</script>` stays visible as code",
]


def remote_requests(page):
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    return lambda: [url for url in seen if urlsplit(url).hostname not in ("127.0.0.1", "localhost")]


def hover_everything(page):
    page.evaluate(
        """() => document.querySelectorAll('#transcript *').forEach((node) => {
            for (const type of ['mouseover', 'mouseenter', 'focus', 'click']) {
                // Links navigate away and regenerate starts a new reply: neither is what this test is about.
                if (type === 'click' && node.closest('a, .regenerate-button')) continue;
                node.dispatchEvent(new Event(type, { bubbles: true }));
            }
        })"""
    )


def test_long_reply_renders_while_streaming_and_matches_the_stored_render(page, alice, api):
    api.delay = 0.01
    api.enqueue(Reply(text=LONG_REPLY, chunk_size=24))
    response_headers = {}
    page.on("response", lambda r: response_headers.update(r.headers) if r.url.endswith("/") else None)
    log_in(page, "alice", "alice-password-1")
    csp = response_headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "img-src 'self' data: blob:" in csp

    page.fill("#message-input", "Show me everything")
    page.keyboard.press("Enter")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply.locator(".message-content h2")).to_have_text("Overview")
    assert reply.get_attribute("data-status") == "streaming"  # rendered HTML before the reply ends
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)

    content = reply.locator(".message-content")
    expect(content.locator("strong")).to_have_text("bold")
    expect(content.locator(".codeblock .codeblock-lang")).to_have_text("python")
    assert content.locator(".codeblock pre.codehilite code span").count() > 3  # highlighted by Pygments
    expect(content.locator(".table-wrap table th")).to_have_text(["Name", "Value"])
    assert content.locator(".md-tail").count() == 0
    streamed_html = content.inner_html()

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    content.locator(".copy-code").click()
    assert page.evaluate("navigator.clipboard.readText()") == CODE
    reply.hover()
    reply.locator(".copy-message").click()
    assert page.evaluate("navigator.clipboard.readText()") == LONG_REPLY

    page.reload()
    reloaded = page.locator(".message[data-role=assistant]").last.locator(".message-content")
    assert reloaded.inner_html() == streamed_html


def test_hostile_markdown_from_the_model_and_the_user_runs_nothing(page, alice, api):
    remote = remote_requests(page)
    corpus = "\n\n".join(XSS_PAYLOADS)
    api.enqueue(Reply(text=corpus, chunk_size=7))
    log_in(page, "alice", "alice-password-1")
    page.fill("#message-input", corpus)
    page.keyboard.press("Enter")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)
    page.reload()
    expect(page.locator(".message[data-role=assistant]").last).to_have_attribute("data-status", "complete")

    hover_everything(page)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert remote() == []
    for message in (page.locator(".message[data-role=user]").last, page.locator(".message[data-role=assistant]").last):
        content = message.locator(".message-content")
        expect(content).to_contain_text("js link")
        expect(content).to_contain_text("raw anchor")
        expect(content).to_contain_text("stays visible as code")
        assert content.locator("script, iframe, svg, img, style, link, meta").count() == 0
        hrefs = content.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert all(h.startswith(("http://", "https://", "mailto:")) for h in hrefs), hrefs
        rels = content.locator("a").evaluate_all("links => links.map(a => a.rel)")
        assert all(rel == "noopener noreferrer nofollow" for rel in rels)


def test_a_thousand_messages_open_one_page_and_older_ones_load_on_scroll(page, alice, api):
    conversation = Conversation.objects.create(owner=alice, title="Long chat")
    rows = Message.objects.bulk_create(
        Message(conversation=conversation, role="user" if i % 2 == 0 else "assistant", content=f"Message number {i}")
        for i in range(1000)
    )
    # bulk_create skips Message.save, which links each new message to the one before it.
    rows = list(conversation.messages.order_by("id"))
    for previous, message in zip(rows, rows[1:]):
        message.parent = previous
    Message.objects.bulk_update(rows[1:], ["parent"])
    log_in(page, "alice", "alice-password-1")
    page.goto(conversation.get_absolute_url())
    messages = page.locator("#transcript .message")
    expect(messages.last.locator(".message-content")).to_have_text("Message number 999")
    assert messages.count() == 50
    page.locator("#scroller").evaluate("scroller => { scroller.scrollTop = 0; }")
    expect(messages).to_have_count(100)
    expect(messages.first.locator(".message-content")).to_have_text("Message number 900")


def test_a_huge_paste_keeps_the_page_responsive(page, alice, api):
    log_in(page, "alice", "alice-password-1")
    text = "\n".join(f"line {i}" for i in range(20_000))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("(text) => navigator.clipboard.writeText(text)", text)
    page.locator("#message-input").focus()
    page.keyboard.press("Control+V")  # a real paste, through the browser's own clipboard
    assert page.input_value("#message-input") == text
    assert page.evaluate("1 + 1") == 2  # the page still answers
    box = page.locator("#message-input").bounding_box()
    assert box["height"] < page.viewport_size["height"] * 0.6
