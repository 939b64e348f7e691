"""Streaming rendering: whatever the deltas, the committed fragments end byte-identical to rendering the finished
text once; finished blocks are sent once, the open tail is throttled, and an open fence is highlighted once closed."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.rendering import RenderUpdate, StreamRenderer, render_markdown
from tests.render_helpers import REL, FakeClock, code_block

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
