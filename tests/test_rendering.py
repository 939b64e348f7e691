"""Markdown rendering: what each feature becomes, what never gets through, and streaming that
ends byte-identical to rendering the finished text once."""

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.rendering.markdown import RenderUpdate, StreamRenderer, render_markdown, render_user_text, sanitize_html

COPY_BAR = (
    '<div class="codeblock-bar"><span class="codeblock-lang">{}</span>'
    '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>'
)
REL = 'target="_blank" rel="noopener noreferrer nofollow"'


def code_block(lang: str, body: str) -> str:
    return f'<div class="codeblock">{COPY_BAR.format(lang)}<pre class="codehilite"><code>{body}</code></pre></div>\n'


# --- one test per Markdown feature ------------------------------------------------------------


def test_heading():
    assert render_markdown("# Title\n\n### Small") == "<h1>Title</h1>\n<h3>Small</h3>\n"


def test_emphasis():
    assert render_markdown("*em* and **strong**") == "<p><em>em</em> and <strong>strong</strong></p>\n"


def test_lists():
    assert render_markdown("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
    assert render_markdown("3. c\n4. d") == '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>\n'


def test_task_list():
    assert render_markdown("- [ ] todo\n- [x] done") == (
        '<ul class="contains-task-list">\n'
        '<li class="task-list-item"><input class="task-list-item-checkbox" disabled="disabled" '
        'type="checkbox"> todo</li>\n'
        '<li class="task-list-item"><input class="task-list-item-checkbox" checked="checked" disabled="disabled" '
        'type="checkbox"> done</li>\n'
        "</ul>\n"
    )


def test_table_is_wrapped_to_scroll_and_aligned_with_classes():
    html = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |")
    assert html.startswith('<div class="table-wrap"><table>\n<thead>\n<tr>\n<th class="align-left">a</th>')
    assert '<td class="align-right">2</td>' in html
    assert html.endswith("</table></div>\n")
    assert "style" not in html


def test_strikethrough():
    assert render_markdown("~~gone~~") == "<p><s>gone</s></p>\n"


def test_bare_url_is_linkified():
    assert render_markdown("see https://example.com/a?b=c.") == (
        f'<p>see <a href="https://example.com/a?b=c" {REL}>https://example.com/a?b=c</a>.</p>\n'
    )


def test_file_names_are_not_mistaken_for_domains():
    assert render_markdown("edit setup.py and README.md") == "<p>edit setup.py and README.md</p>\n"


def test_bare_email_becomes_mailto_link():
    assert render_markdown("mail me@example.com") == (
        f'<p>mail <a href="mailto:me@example.com" {REL}>me@example.com</a></p>\n'
    )


def test_code_fence_is_highlighted_with_its_language():
    html = render_markdown("```python\ndef f(x):\n    return x\n```")
    assert html == code_block(
        "python",
        '<span class="k">def</span><span class="w"> </span><span class="nf">f</span><span class="p">(</span>'
        '<span class="n">x</span><span class="p">):</span>\n'
        '    <span class="k">return</span> <span class="n">x</span>\n',
    )


def test_unknown_language_is_escaped_not_guessed():
    assert render_markdown("```nosuchlang\ndef f(): <b>\n```") == code_block("nosuchlang", "def f(): &lt;b&gt;\n")


def test_fence_without_language_is_escaped_not_guessed():
    assert render_markdown("```\nimport os\n```") == code_block("", "import os\n")


def test_indented_code_gets_the_same_wrapper():
    assert render_markdown("    x = <y>") == code_block("", "x = &lt;y&gt;\n")


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>hi</b> <script>alert(1)</script>") == (
        "<p>&lt;b&gt;hi&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_image_is_rendered_as_a_link_to_it():
    assert render_markdown("![a cat](https://example.com/cat.png)") == (
        f'<p><a href="https://example.com/cat.png" {REL}>a cat</a></p>\n'
    )


def test_image_without_web_url_is_only_its_alt_text():
    assert render_markdown("![a cat](data:image/png;base64,AAAA)") == "<p>a cat</p>\n"
    assert render_markdown("![a cat](/cat.png)") == "<p>a cat</p>\n"


def test_image_inside_link_does_not_nest_links():
    assert render_markdown("[![badge](https://img.example/b.svg)](https://example.com)") == (
        f'<p><a href="https://example.com" {REL}>badge</a></p>\n'
    )


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "vbscript:msgbox(1)"])
def test_dangerous_link_schemes_never_become_links(url):
    html = render_markdown(f"[x]({url})")
    assert "<a" not in html
    assert html == f"<p>[x]({url})</p>\n"


@pytest.mark.parametrize("url", ["ftp://example.com/f", "/relative/path", "#anchor"])
def test_other_link_schemes_keep_only_their_text(url):
    assert render_markdown(f"[x]({url})") == "<p>x</p>\n"


def test_links_open_in_a_new_tab_without_referrer():
    assert render_markdown('[docs](https://example.com "The docs")') == (
        f'<p><a href="https://example.com" title="The docs" {REL}>docs</a></p>\n'
    )


def test_mailto_link_is_kept():
    assert render_markdown("[write](mailto:a@example.com)") == (
        f'<p><a href="mailto:a@example.com" {REL}>write</a></p>\n'
    )


def test_user_text_renders_like_model_text():
    text = "Why does `x` fail?\n\n```python\nx = 1\n```"
    assert render_user_text(text) == render_markdown(text)


def test_lone_surrogates_are_replaced_not_fatal():
    assert render_markdown("a\ud83db") == "<p>a\ufffdb</p>\n"


def test_sanitizer_keeps_the_renderers_markup():
    html = render_markdown("```python\nx = 1\n```\n\n- [x] y\n\n| a |\n|:-:|\n| b |")
    assert sanitize_html(html) == html
    assert '<span class="n">x</span>' in html


def test_sanitizer_drops_everything_else():
    dirty = (
        '<div class="codeblock evil" style="color:red" onclick="x()"><img src="x.png">'
        '<span class="k nope" data-x="1">t</span><iframe src="https://example.com"></iframe>'
        '<a href="javascript:alert(1)">j</a><a href="/local">l</a>'
        '<input type="text" value="v"><button type="submit" aria-label="Delete">b</button>'
        "<script>alert(1)</script><style>p{}</style><!-- c --></div>"
    )
    assert sanitize_html(dirty) == (
        f'<div class="codeblock"><span class="k">t</span><a {REL}>j</a><a {REL}>l</a>'
        "<input><button>b</button></div>"
    )


# --- XSS corpus -------------------------------------------------------------------------------

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


# --- streaming --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


DEFINITION_RE = re.compile(r"(?m)^[ \t>*+\-\d.)]*\[[^\]]*\]:")


def stream(text: str, cuts: list[int], steps: list[float] | None = None, forces: list[bool] | None = None) -> str:
    """Feed text split at `cuts`, flushing after each delta like the browser would see it; check
    each update against a browser model and against a renderer that sees the text at once.
    Returns the concatenated committed fragments."""
    clock = FakeClock()
    renderer = StreamRenderer(clock=clock)
    committed: list[str] = []
    tail = ""
    bounds = sorted(set(cuts) | {len(text)})
    previous = 0
    for i, cut in enumerate(bounds):
        renderer.feed(text[previous:cut])
        previous = cut
        clock.now += steps[i % len(steps)] if steps else 1.0
        update = renderer.flush(force=bool(forces and forces[i % len(forces)]))
        if update is not None:
            assert isinstance(update, RenderUpdate)
            committed.extend(update.committed)
            tail = update.tail
        assert renderer.html == "".join(committed) + tail
        if update is not None and not DEFINITION_RE.search(text):
            assert renderer.html == at_once(text[:cut]).html
    final = renderer.finish()
    committed.extend(final.committed)
    assert final.tail == "" and renderer.html == "".join(committed)
    return "".join(committed)


def at_once(text: str) -> StreamRenderer:
    renderer = StreamRenderer(clock=FakeClock())
    renderer.feed(text)
    renderer.flush(force=True)
    return renderer


CURATED = {
    "ends mid-list": "Intro.\n\n- one\n- two\n- thr",
    "ends mid-table": "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |",
    "ends inside an unclosed fence": "Code:\n\n```python\ndef f():\n    return 1\n",
    "list turns loose late": "- a\n- b\n- c\n\n- d\n\nAfter.",
    "list items with markup": "- **Bold** term: text\n- *em* and `code()`\n- plain item\n1. one\n2. two\n\nend",
    "setext headings": "Title\n-----\n\nBody text\n=====\nmore\n---\n",
    "reference definition at the end": (
        "See [the docs] and [x][y].\n\nMore text.\n\n- list\n\n"
        "[the docs]: https://example.com/docs\n[y]: https://example.com/y"
    ),
    "table interrupts a paragraph": "para\na | b\n--|--\n1 | 2\n\nend",
    "heading turns into a table": "# A | B\n--|--\nx | y",
    "lazy continuation": "> quote\nlazy\n\n- item\ncontinued\n\nend",
    "nested list with code": "1. one\n   - inner\n\n     ```js\n     x()\n     ```\n2. two\n\nDone.",
    "indented code across a blank line": "    code\n\n    more code\n\ntext",
    "fence closes then text": "```py\nx = 1\n```\nafter fence\n\n```\nplain\n```",
    "fence with a longer closing run": "````\n```\nstill code\n`````\nafter",
    "task lists": "- [ ] todo\n- [x] done\n\nnext",
    "crlf newlines": "a\r\nb\r\n\r\n- c\r\n- d\r\n\r\n```\r\ncode\r\n```\r\n",
    "raw html and entities": "<div>\n&amp; &copy; <b>x</b>\n</div>\n\n&#35; not a heading",
    "links and e-mail": "Visit https://example.com/path, or me@example.com.\n\n[link](http://x.y) and <https://a.b>",
    "trailing spaces and hard breaks": "line one  \nline two\\\nthree   \n\n- item  \n- next   ",
}


@pytest.mark.parametrize("text", CURATED.values(), ids=CURATED.keys())
@pytest.mark.parametrize("split", ["chars", "words", "lines"])
def test_streamed_fragments_equal_the_one_shot_render(text, split):
    if split == "chars":
        cuts = list(range(len(text)))
    elif split == "words":
        cuts = [m.start() for m in re.finditer(r"\s", text)]
    else:
        cuts = [m.end() for m in re.finditer("\n", text)]
    assert stream(text, cuts) == render_markdown(text)


LINES = [
    "# Heading", "## Sub *em*", "Para with **bold**, `co[de]` and a [link](https://a.example/x).", "lazy line",
    "- item", "- **bold** item", "- `code` item", "- [ ] task", "- [x] done", "  - nested", "    - deeper",
    "1. first", "2) second", "* star", "+ plus", "| a | b |", "|---|:-:|", "| 1 | 2 |", "a | b", "--|--",
    "```", "```python", "~~~", "````", "    indented code", "\tcode after tab", "> quote", "> > nested", ">",
    "", "", "", "   ", "---", "===", "***", "- - -", "[ref]: https://example.com/ref", "[ref]",
    '[x]: /u "t"', "see [ref] and [x]", "[a][ref]", '"title"', "<div>html</div>", "<script>x</script>",
    "https://example.com/p", "mail me@example.com", "two spaces  ", "back\\", "  two", "   three",
    "def f(x):", "    return x", "![img](https://i.example/x.png)", "-", "1.", "*", "_under_", "**", "`",
    "# a | b", "```py | x", "Words and more words, plain as can be.", "x |",
]


@st.composite
def streamed_documents(draw):
    line = st.one_of(st.sampled_from(LINES), st.text(alphabet="ab *_`[]()#>-|:!\\<&\t1.=~\"' ", max_size=10))
    text = "\n".join(draw(st.lists(line, min_size=1, max_size=30)))
    text += draw(st.sampled_from(["", "\n", "\n\n"]))
    if draw(st.booleans()) and draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=60))
    steps = draw(st.lists(st.sampled_from([0.0, 0.03, 0.1, 1.0]), min_size=1, max_size=5))
    forces = draw(st.lists(st.booleans(), min_size=1, max_size=5))
    return text, cuts, steps, forces


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streamed_documents())
def test_any_split_streams_to_the_one_shot_render(case):
    text, cuts, steps, forces = case
    assert stream(text, cuts, steps, forces) == render_markdown(text)


def test_open_fence_is_shown_plain_and_highlighted_once_closed():
    renderer = StreamRenderer(clock=FakeClock())
    renderer.feed("```python\ndef f():\n    return 1\n")
    update = renderer.flush(force=True)
    assert update.committed == []
    assert update.tail == code_block("python", "def f():\n    return 1\n")
    renderer.feed("```\n")
    update = renderer.flush(force=True)
    assert update.committed == [render_markdown("```python\ndef f():\n    return 1\n```")]
    assert '<span class="k">def</span>' in update.committed[0]
    assert update.tail == ""


def test_finished_blocks_are_committed_as_the_reply_grows():
    clock = FakeClock()
    renderer = StreamRenderer(clock=clock)
    committed = []
    for n in range(200):
        renderer.feed(f"Paragraph number {n} with *some* text.\n\n")
        clock.now += 1
        update = renderer.flush()
        committed.extend(update.committed)
        assert len(committed) == n + 1
        assert update.tail == ""
    assert renderer.finish().committed == []


def test_text_that_a_later_definition_could_change_waits_for_finish():
    renderer = StreamRenderer(clock=FakeClock())
    renderer.feed("See [docs].\n\nMore.\n\n")
    update = renderer.flush(force=True)
    assert update == RenderUpdate([], "<p>See [docs].</p>\n<p>More.</p>\n")
    renderer.feed("[docs]: https://example.com/docs\n")
    renderer.flush(force=True)
    final = renderer.finish()
    assert final.committed == [
        f'<p>See <a href="https://example.com/docs" {REL}>docs</a>.</p>\n',
        "<p>More.</p>\n",
    ]


def test_tail_updates_are_throttled():
    clock = FakeClock()
    renderer = StreamRenderer(min_interval=0.08, clock=clock)
    renderer.feed("Hello")
    assert renderer.flush() == RenderUpdate([], "<p>Hello</p>\n")
    renderer.feed(" world")
    clock.now += 0.05
    assert renderer.flush() is None
    clock.now += 0.05
    assert renderer.flush() == RenderUpdate([], "<p>Hello world</p>\n")
    renderer.feed("!")
    assert renderer.flush() is None
    assert renderer.flush(force=True) == RenderUpdate([], "<p>Hello world!</p>\n")


def test_blocks_finished_within_one_interval_arrive_together():
    clock = FakeClock()
    renderer = StreamRenderer(clock=clock)
    renderer.feed("start")
    renderer.flush()
    renderer.feed("\n\nsecond\n\nthird\n\nfour")
    assert renderer.flush() is None
    clock.now += 0.1
    assert renderer.flush() == RenderUpdate(
        ["<p>start</p>\n", "<p>second</p>\n", "<p>third</p>\n"], "<p>four</p>\n"
    )


def test_flush_without_new_text_returns_none():
    renderer = StreamRenderer(clock=FakeClock())
    assert renderer.flush(force=True) is None
    renderer.feed("x")
    assert renderer.flush(force=True) is not None
    assert renderer.flush(force=True) is None


def test_committed_fragments_are_never_sent_twice():
    text = "# Title\n\nOne.\n\n- a\n- b\n\n```py\nx = 1\n```\n\n| a |\n|---|\n| 1 |\n\nEnd."
    clock = FakeClock()
    renderer = StreamRenderer(clock=clock)
    sent = []
    for char in text:
        renderer.feed(char)
        clock.now += 1
        update = renderer.flush()
        if update:
            sent.extend(update.committed)
    sent.extend(renderer.finish().committed)
    assert sent == [
        "<h1>Title</h1>\n",
        "<p>One.</p>\n",
        "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n",
        render_markdown("```py\nx = 1\n```"),
        render_markdown("| a |\n|---|\n| 1 |"),
        "<p>End.</p>\n",
    ]


def test_a_carriage_return_split_from_its_newline_is_one_line_break():
    renderer = StreamRenderer(clock=FakeClock())
    committed = []
    for delta in ["a\r", "\nb\r", "\r\n", "c\r"]:
        renderer.feed(delta)
        update = renderer.flush(force=True)
        committed.extend(update.committed if update else [])
    committed.extend(renderer.finish().committed)
    assert "".join(committed) == render_markdown("a\r\nb\r\r\nc\r") == "<p>a\nb</p>\n<p>c</p>\n"


def test_finish_is_final():
    renderer = StreamRenderer(clock=FakeClock())
    renderer.feed("done")
    assert renderer.finish() == RenderUpdate(["<p>done</p>\n"], "")
    assert renderer.finish() == RenderUpdate([], "")
    assert renderer.flush(force=True) is None
    with pytest.raises(RuntimeError):
        renderer.feed("more")
