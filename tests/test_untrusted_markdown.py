"""Untrusted Markdown: every payload of an XSS corpus renders harmless and readable, at once and while streaming."""

import re
from html.parser import HTMLParser

import pytest

from chat.rendering import StreamRenderer, render_markdown
from tests.render_helpers import FakeClock

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="http://example.com" onclick="alert(1)">y</a>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<!--<script>alert(1)//-->",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;&#x61;vascript:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x]( javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](java\x00script:alert(1))",
    "[x](\u200bjavascript:alert(1))",
    "[x](\u202ejavascript:alert(1))",
    "[x](\uff4a\uff41\uff56\uff41\uff53\uff43\uff52\uff49\uff50\uff54:alert(1))",
    "<javascript:alert(1)>",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '![x" onerror="alert(1)](https://example.com/a.png)',
    '[a](http://x" onmouseover="alert(1))',
    "[a](http://x' onmouseover='alert(1))",
    '[a](https://example.com "title\\" onmouseover=\\"alert(1)")',
    '[a](<https://example.com/"onmouseover="alert(1)>)',
    "[x]: javascript:alert(1)\n\n[x]",
    "https://example.com/\"><script>alert(1)</script>",
    "```html\n<script>alert(1)</script>\n```",
    '```" onmouseover="alert(1)\ncode\n```',
    "```<script>alert(1)</script>\ncode\n```",
    "`<script>alert(1)</script>`",
    "| <script>alert(1)</script> | b |\n|---|---|\n| [x](javascript:alert(1)) | <img src=x onerror=alert(1)> |",
    "- [ ] <img src=x onerror=alert(1)>",
    "> <iframe src=//evil.example>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]

ALLOWED_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr", "br", "pre", "code",
    "em", "strong", "s", "del", "a", "span", "div", "button", "input", "table", "thead", "tbody", "tr",
    "th", "td",
}


class Elements(HTMLParser):
    """Collects every start tag with its attributes, and the visible text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def assert_harmless(html: str) -> None:
    elements = Elements(html)
    assert "<script" not in html.lower()
    for tag, attrs in elements.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in {"style", "src", "srcdoc", "formaction"}, (tag, name)
            squashed = re.sub(r"[\s\x00-\x1f]", "", (value or "").lower())
            assert "javascript:" not in squashed and "vbscript:" not in squashed, (tag, name, value)
        if tag == "a" and "href" in attrs:
            assert re.match(r"(https?://|mailto:)", attrs["href"]), attrs["href"]


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_render_harmless_and_readable(payload):
    html = render_markdown(payload)
    assert_harmless(html)
    assert "".join(Elements(html).text).strip(), "the text should stay readable"


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_stay_harmless_while_streaming(payload):
    renderer = StreamRenderer(clock=FakeClock())
    for char in payload:
        renderer.feed(char)
        update = renderer.flush(force=True)
        if update:
            assert_harmless(update.tail)
    assert_harmless(renderer.html)
