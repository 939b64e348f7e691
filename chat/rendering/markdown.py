"""Markdown → safe HTML, for whole messages and for replies that are still streaming.

One renderer serves the chat, the admin and exports: markdown-it-py (CommonMark plus tables,
strikethrough, linkify and task lists, raw HTML off), Pygments for fenced code, nh3 as the final
allow-list. A document is rendered one top-level block at a time, each block sanitised on its own,
so the fragments a `StreamRenderer` commits while a reply streams are byte-identical to what
`render_markdown` produces for the finished text.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import MD_TRIM_RE, escapeHtml, mdTrim, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.rules_core import linkify as core_linkify
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = ["RenderUpdate", "StreamRenderer", "render_markdown", "render_user_text", "sanitize_html"]

LINK_RE = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
WEB_URL_RE = re.compile(r"https?://", re.IGNORECASE)

# Pygments needs ~1.5 ms per KB; past this a block stays plain so one huge paste can't stall a worker.
MAX_HIGHLIGHT_CHARS = 64_000

# Above ~8 KB of open text the tail is re-rendered less often, so that a long open block (a huge list,
# or text held back by a possible reference link) costs at most a few percent of a core per stream.
TAIL_CHARS_PER_SECOND = 100_000

ALIGN_CLASSES = {"align-left", "align-center", "align-right"}
PYGMENTS_CLASSES = {name for name in STANDARD_TYPES.values() if name}

_CLEANER = nh3.Cleaner(
    tags={
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr", "br",
        "pre", "code", "em", "strong", "s", "del", "a", "span", "div", "button", "input",
        "table", "thead", "tbody", "tr", "th", "td",
    },
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    tag_attribute_values={
        "button": {"type": {"button"}, "aria-label": {"Copy code"}},
        "input": {"type": {"checkbox"}, "checked": {"checked"}, "disabled": {"disabled"}},
    },
    set_tag_attribute_values={"a": {"target": "_blank"}},
    allowed_classes={
        "div": {"codeblock", "codeblock-bar", "table-wrap"},
        "span": {"codeblock-lang"} | PYGMENTS_CLASSES,
        "pre": {"codehilite"},
        "button": {"copy-code"},
        "ul": {"contains-task-list"},
        "ol": {"contains-task-list"},
        "li": {"task-list-item"},
        "input": {"task-list-item-checkbox"},
        "th": ALIGN_CLASSES,
        "td": ALIGN_CLASSES,
    },
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


@dataclass(frozen=True)
class RenderUpdate:
    """What the browser needs after a flush: append `committed` (each final, sent once, in order)
    before its tail element, then replace the tail element's content with `tail`."""

    committed: list[str]
    tail: str


def render_markdown(text: str) -> str:
    """Render Markdown to sanitised HTML. Raw HTML in the input is shown as text, images become
    links, only http(s) and mailto links survive, and every link opens in a new tab with
    rel="noopener noreferrer nofollow"."""
    tokens, _ = _parse(_normalize(text), {})
    return "".join(_render_block(block) for block in _top_level_blocks(tokens))


def render_user_text(text: str) -> str:
    """Render what a person typed. People paste Markdown and code into chat as often as the
    model writes it, so their messages go through the same renderer: one code path to keep safe,
    and a pasted snippet looks the same on both sides of the conversation."""
    return render_markdown(text)


def sanitize_html(html: str) -> str:
    """The allow-list every rendered fragment passes through last: only the tags, classes and
    attributes this renderer produces, http(s)/mailto URLs, and links forced to a new tab."""
    return _CLEANER.clean(html)


class StreamRenderer:
    """Renders a reply that grows by deltas, rendering each finished block once.

    feed() appends text; flush() returns what changed since the last update (or None); finish()
    commits everything. After finish(), the concatenation of every committed fragment equals
    render_markdown(full text), whatever the deltas were.

    The text has three regions: committed blocks (sent, never touched again); held blocks, final
    but after a block that looked up a link reference, so they wait for finish() (see `_is_final`);
    and the open region, re-parsed when an update is due and shown, after the held blocks, as the
    tail. Fenced code in the tail is not highlighted: a long open fence would cost Pygments time on
    every update. Plain words appended to the end of a paragraph, list item or open fence are
    spliced into the previous tail instead of re-parsing it (see `_Open`).
    """

    def __init__(self, min_interval: float = 0.08, clock: Callable[[], float] = time.monotonic):
        self._min_interval = min_interval
        self._clock = clock
        self._text = ""  # received text, normalised like markdown-it does, minus a trailing "\r"
        self._pending_cr = False  # a "\r" that may be the first half of "\r\n"
        self._held_start = 0  # offset in _text where committed text ends
        self._start = 0  # offset in _text where the open region starts (always a line start)
        self._references: dict[str, dict] = {}  # definitions in committed text
        self._held_references: dict[str, dict] = {}  # definitions in held text
        self._committed: list[str] = []
        self._held_html = ""
        self._open = _Open()
        self._tail = ""
        self._rendered_at: float | None = None
        self._finished = False

    @property
    def html(self) -> str:
        """Everything committed so far followed by the current tail."""
        return "".join(self._committed) + self._tail

    @property
    def dirty(self) -> bool:
        """True when text arrived that no update has shown yet."""
        return not self._finished and len(self._text) != self._open.length

    def feed(self, delta: str) -> None:
        """Append text. Raises RuntimeError after finish()."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self._pending_cr:
            delta = "\r" + delta
        self._pending_cr = delta.endswith("\r")
        if self._pending_cr:
            delta = delta[:-1]
        self._text += _normalize(delta)

    def flush(self, force: bool = False) -> RenderUpdate | None:
        """Return the blocks finished since the last update and the new tail, or None when nothing
        changed or (unless force) the last update is younger than the throttle interval."""
        if not self.dirty:
            return None
        now = self._clock()
        if not force and self._rendered_at is not None and now - self._rendered_at < self._interval():
            return None
        self._rendered_at = now
        committed = self._refresh()
        tail = self._held_html + self._open.html
        if not committed and tail == self._tail:
            return None
        self._tail = tail
        return RenderUpdate(committed, tail)

    def finish(self) -> RenderUpdate:
        """Commit everything that is left; the tail becomes empty. Later calls return an empty update."""
        if self._finished:
            return RenderUpdate([], "")
        if self._pending_cr:
            self._text += "\n"
        self._finished = True
        # Held blocks are rendered again: definitions that arrived since may turn their text into links.
        tokens, _ = _parse(self._text[self._held_start:], self._references)
        committed = [_render_block(block) for block in _top_level_blocks(tokens)]
        self._committed.extend(committed)
        self._tail = ""
        return RenderUpdate(committed, "")

    def _interval(self) -> float:
        return max(self._min_interval, (len(self._text) - self._held_start) / TAIL_CHARS_PER_SECOND)

    def _refresh(self) -> list[str]:
        appended = self._open.append(self._text[self._open.length:])
        if appended is not None:
            self._open = appended
            return []
        return self._advance()

    def _advance(self) -> list[str]:
        """Parse the open region, commit or hold the blocks that became final, render the rest."""
        source = self._text[self._start:]
        known = {**self._held_references, **self._references}
        tokens, found = _parse(source, known)
        blocks = list(_top_level_blocks(tokens))
        lines = source.split("\n")
        final = _count_final(blocks, lines)
        committed = self._settle(blocks[:final], lines, {k: v for k, v in found.items() if k not in known})
        rest = [token for block in blocks[final:] for token in block]
        html = sanitize_html(_render(rest, highlight=False)) if rest else ""
        self._open = _Open.after_render(html, len(self._text), rest, source, found)
        return committed

    def _settle(self, blocks: list[list[Token]], lines: list[str], definitions: dict[str, dict]) -> list[str]:
        """Commit the final blocks that may be sent now, hold the others; move the open region on."""
        if not blocks:
            return []
        holding = self._held_start < self._start
        sendable = 0 if holding else _count_without_references(blocks)
        html = [_render_block(block) for block in blocks]
        offset = _line_offsets(lines)
        if sendable:
            end = blocks[sendable - 1][0].map[1]
            _move_definitions(definitions, end, self._references)
            self._held_start = self._start + offset[end]
        _move_definitions(definitions, blocks[-1][0].map[1], self._held_references)
        self._start += offset[blocks[-1][0].map[1]]
        self._committed.extend(html[:sendable])
        self._held_html += "".join(html[sendable:])
        return html[:sendable]


# --- when a block is final ------------------------------------------------------------------------


def _count_final(blocks: list[list[Token]], lines: list[str]) -> int:
    """How many leading blocks no future text can change."""
    count = 0
    while count < len(blocks) and _is_final(blocks, count, lines):
        count += 1
    return count


def _is_final(blocks: list[list[Token]], index: int, lines: list[str]) -> bool:
    """Whether appending text can no longer change blocks[index] (its preceding blocks being final).

    `lines[-1]` is the line still being written (empty when the text ends with a newline); every
    other line is complete. markdown-it decides a block's extent from its own lines plus at most
    one line of lookahead (a table header needs the delimiter row below it), so a block is final:
    - when a later top-level block starts on a complete line that is followed by a complete line
      or by nothing yet (once another block has begun, CommonMark never reopens a closed one); or
    - when it is a kind that a blank line ends (paragraph, heading, rule, table, blockquote) and the
      line after it is a complete blank line; or
    - when it is a fenced code block whose closing fence is a complete line.
    Lists and indented code are not in the second group: a blank line does not end them.
    This is about structure only: inline text that looked up a link reference ("[x]", "[x][y]")
    can still change if a definition arrives below, which is why such blocks are held.
    """
    block = blocks[index]
    complete = len(lines) - 1
    if index + 1 < len(blocks):
        start = blocks[index + 1][0].map[0]
        if start + 1 < complete or (start + 1 == complete and lines[-1] == ""):
            return True
    first = block[0]
    end = first.map[1]
    if first.type in _ENDED_BY_BLANK_LINE and end < complete and not lines[end].strip(" \t"):
        return True
    closing = end - 1  # only a fence of two lines or more can have a closing line
    if first.type != "fence" or not first.map[0] < closing < complete:
        return False
    return _closes_fence(lines[closing], first.markup)


_ENDED_BY_BLANK_LINE = {"paragraph_open", "heading_open", "hr", "table_open", "blockquote_open", "fence"}


def _closes_fence(line: str, markup: str) -> bool:
    stripped = line.lstrip(" ")
    run = len(stripped) - len(stripped.lstrip(markup[0]))
    return len(line) - len(stripped) <= 3 and run >= len(markup) and not stripped[run:].strip(" \t")


def _count_without_references(blocks: list[list[Token]]) -> int:
    count = 0
    while count < len(blocks) and not any(token.meta.get("uses_references") for token in blocks[count]):
        count += 1
    return count


def _move_definitions(definitions: dict[str, dict], end_line: int, into: dict[str, dict]) -> None:
    # Definitions in settled lines must still apply when only the text after them is parsed again.
    for label, ref in list(definitions.items()):
        if ref["map"][1] <= end_line:
            into[label] = definitions.pop(label)


def _line_offsets(lines: list[str]) -> list[int]:
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    return offsets


# --- showing typed text without parsing again -----------------------------------------------------


@dataclass(frozen=True)
class _Open:
    """The rendered open region, and how text typed at its end can be shown without re-parsing it.

    This is exact, not a preview (the tests compare it with full renders). `after_render` offers it
    in three cases:
    - The region ends in an unclosed code fence: code is escaped into the end of the block as long
      as no line could close the fence.
    - The region ends in inline text (a paragraph, heading, list item, table cell or quote) on a
      line that already holds a letter, so no block marker can still form there, and whose content
      cannot turn into a link definition or task item (it does not start with "["). Text without a
      newline, "|" (a cell), "#" (a heading's closing sequence) or whitespace other than spaces
      (trailing spaces are trimmed) then only changes that inline content, which alone is parsed
      again. When both the typed text and the end of the content are plain (letters, digits,
      spaces, non-ASCII symbols and `,.'"?!-(:=+%$^{}`, but not `/` `;` `)` that could complete a
      bare URL, an entity or a link), no inline construct can open, close or grow, and the text is
      spliced in as it is.
    - That inline text is the single-line last item of a tight top-level list: new lines with the
      same marker followed by a letter add more tight items.
    """

    html: str = ""
    length: int = 0  # len(StreamRenderer._text) that html shows
    end: int | None = None  # where typed text goes in html; None: parse again
    fence: str = ""  # the fence character when the region ends in an open code fence
    line: str = ""  # the last source line, still being written
    start: int = 0  # where the HTML of the last inline content starts
    content: str = ""  # its source, with the trailing spaces markdown-it trims
    plain: bool = False  # plain text may be spliced in at `end`
    references: dict = field(default_factory=dict)
    marker: str = ""  # the list's marker ("-", "*", "+", "." or ")") when items can be added
    list_end: int = 0  # where the list's closing tag starts

    @classmethod
    def after_render(cls, html: str, length: int, tokens: list[Token], source: str, references: dict) -> _Open:
        line = source.rsplit("\n", 1)[-1]
        if tokens and tokens[-1].type == "fence":
            if not (_is_open_fence(tokens[-1], source.split("\n")) and html.endswith(_CODE_END)):
                return cls(html, length)
            return cls(html, length, len(html) - len(_CODE_END), tokens[-1].markup[0], line)
        index = _last_inline(tokens, source)
        if index is None:
            return cls(html, length)
        inline = tokens[index]
        inline_html = sanitize_html(_render([inline], highlight=False))
        end = len(html) - len(_render(tokens[index + 1:], highlight=False))  # closing tags only
        start = end - len(inline_html)
        if html[start:end] != inline_html:
            return cls(html, length)
        content = inline.content + line[len(line.rstrip(" ")):]
        plain = _splices_plain_text(inline.children, line)
        marker = _tight_list_marker(tokens, line) if html.endswith(("</ul>\n", "</ol>\n")) else ""
        list_end = len(html) - len("</ul>\n")
        return cls(html, length, end, "", line, start, content, plain, references, marker, list_end)

    def append(self, added: str) -> _Open | None:
        """This region with `added` typed at its end, or None when it must be parsed again."""
        if self.end is None:
            return None
        if self.fence:
            return self._append_code(added)
        first, *lines = added.split("\n")
        opened = self._type(first) if first else self
        for line in lines:
            opened = opened._add_item(line) if opened is not None and opened.marker else None
        return None if opened is None else replace(opened, length=self.length + len(added))

    def _append_code(self, added: str) -> _Open | None:
        line = self.line + added
        if re.search(rf"(?m)^[ \t]*{re.escape(self.fence)}", line):
            return None  # a line that may close the fence
        line = line.rsplit("\n", 1)[-1]
        if line and not line.strip(" \t"):
            return None  # markdown-it leaves a last line of only spaces out of the content
        return self._splice(self.end, self.end, _escape_text(added), length=self.length + len(added), line=line)

    def _type(self, text: str) -> _Open | None:
        """Text typed on the current line, inside its inline content."""
        if not _STAYS_ON_LINE_RE.fullmatch(text):
            return None
        line, content = self.line + text, self.content + text
        if self.plain and _PLAIN_RE.fullmatch(text):
            shown = len(self.content.rstrip(" "))
            return self._splice(self.end, self.end, content.rstrip(" ")[shown:], line=line, content=content)
        tokens = _md.parseInline(content.rstrip(" "), {"references": _ReferenceTable(self.references)})
        inline_html = sanitize_html(_render(tokens, highlight=False))
        plain = _splices_plain_text(tokens[0].children, line)
        return self._splice(self.start, self.end, inline_html, line=line, content=content, plain=plain)

    def _add_item(self, line: str) -> _Open | None:
        """A new line of the list: one more item when it is the marker, a space and a paragraph
        that starts with a letter, maybe after one or two "*", "_" or one "`" (so it is not a
        nested list, rule, heading, quote, fence, task or link definition)."""
        item = re.fullmatch(rf"({_marker_re(self.marker)} )((?=(?:\*\*?|__?|`)?[^\W\d_]).*)", line)
        if item is None:
            return None
        at = self.list_end
        opened = self._splice(at, at, "<li></li>\n", start=at + 4, end=at + 4, line=item[1], content="", plain=False)
        return opened._type(item[2])

    def _splice(self, at: int, until: int, insert: str, **changes) -> _Open:
        """Replace html[at:until] with insert (by default typed text then goes after it)."""
        moved = len(insert) - (until - at)  # the list's end always comes after the splice
        return replace(
            self,
            html=self.html[:at] + insert + self.html[until:],
            **{"end": at + len(insert), "list_end": self.list_end + moved, **changes},
        )


_CODE_END = "</code></pre></div>\n"
_PLAIN_RE = re.compile(r"(?:[^\W_]|[ ,.'\"?!\-(:=+%$^{}]|[^\x00-\x7f\s])*")
_LETTER_RE = re.compile(r"[^\W\d_]")
# Typing that stays inside the current line's inline content: no newline, no "|" (a table cell),
# no "#" (a heading's closing sequence), no whitespace markdown-it would trim other than spaces.
_STAYS_ON_LINE_RE = re.compile(r"(?:[^\s|#]| )*")


def _tight_list_marker(tokens: list[Token], line: str) -> str:
    """The marker of the tight top-level list the text ends in, when its last item is the
    single line being written; otherwise ""."""
    kinds = ["list_item_open", "paragraph_open", "inline", "paragraph_close", "list_item_close"]
    if [token.type for token in tokens[-6:-1]] != kinds:
        return ""
    item, paragraph, close = tokens[-6], tokens[-5], tokens[-1]
    on_line = item.map[1] - item.map[0] == 1 and re.match(_marker_re(close.markup) + " ", line)
    return close.markup if close.level == 0 and paragraph.hidden and on_line else ""


def _marker_re(marker: str) -> str:
    """A list item marker: the bullet itself, or a number and the delimiter ("." or ")")."""
    return re.escape(marker) if marker in "-*+" else rf"[0-9]{{1,9}}{re.escape(marker)}"


def _is_open_fence(fence: Token, lines: list[str]) -> bool:
    """Whether the fence runs to the end of the text unclosed, its content being the raw lines
    (an indented fence has its indentation stripped from each line)."""
    if lines[-1] and not lines[-1].strip(" \t"):
        return False  # markdown-it leaves a last line of only spaces out of the content, for now
    start, end = fence.map
    if start + 1 >= len(lines) - 1:
        return False  # until its first content line is complete, the opening line may head a table
    closed = _closes_fence(lines[end - 1], fence.markup)
    return end == len(lines) - (lines[-1] == "") and not closed and lines[start].startswith(fence.markup)


def _last_inline(tokens: list[Token], source: str) -> int | None:
    """The index of the inline token the text ends in, if typing on that line can only change
    its content; only closing tokens come after it."""
    index = len(tokens) - 1
    while index > 0 and tokens[index].nesting == -1:
        index -= 1
    if index < 0:
        return None
    inline, line = tokens[index], source.rsplit("\n", 1)[-1]
    if inline.type != "inline" or not inline.map or inline.map[1] != source.count("\n") + 1:
        return None
    if not inline.content or inline.content.startswith("[") or not source.rstrip(" ").endswith(inline.content):
        return None
    if inline.children and inline.children[0].type == "html_inline":
        return None  # a task item's checkbox, which parsing the content alone would not restore
    return index if _LETTER_RE.search(line) else None


def _splices_plain_text(children: list[Token], line: str) -> bool:
    """Whether plain text typed at the end only extends the last text token."""
    line = line.rstrip(" ")
    if not children or not line or line[-1].isspace() or not _PLAIN_RE.fullmatch(line[-1]):
        return False
    *_, before, text = [None, *children]
    if before is not None and before.markup == "linkify" and " " not in text.content:
        return False  # "example.com." + "uk": a bare URL may still grow over the text after it
    # "@": a bare e-mail address is linkified once it is complete.
    return text.type == "text" and text.content != "" and line.endswith(text.content) and "@" not in text.content


def _escape_text(text: str) -> str:
    # What markdown-it then nh3 make of text inside <code>.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")


# --- parsing and rendering ------------------------------------------------------------------------


def _top_level_blocks(tokens: list[Token]) -> Iterator[list[Token]]:
    start = depth = 0
    for index, token in enumerate(tokens):
        depth += token.nesting
        if depth == 0:
            yield tokens[start:index + 1]
            start = index + 1


def _normalize(text: str) -> str:
    # Newlines as markdown-it normalises them, done up front so line numbers match the stored text;
    # lone surrogates (JSON can carry them) would make nh3 raise.
    return _SURROGATE_RE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _render_block(block: Sequence[Token]) -> str:
    return sanitize_html(_render(block, highlight=True))


def _render(tokens: Sequence[Token], highlight: bool) -> str:
    return _md.renderer.render(tokens, _md.options, {"highlight": highlight})


def _parse(text: str, references: dict[str, dict]) -> tuple[list[Token], dict]:
    """Tokens for text, given the reference definitions already known, and the definitions after."""
    table = _ReferenceTable(references)
    return _md.parse(text, {"references": table}), table


class _ReferenceTable(dict):
    """Reference definitions that note whether inline parsing looked up any (non-empty) label."""

    consulted = False

    def _note(self, label: object) -> None:
        if label:
            self.consulted = True

    def get(self, label, default=None):
        self._note(label)
        return super().get(label, default)

    def __contains__(self, label) -> bool:
        self._note(label)
        return super().__contains__(label)

    def __getitem__(self, label):
        self._note(label)
        return super().__getitem__(label)


# --- markdown-it configuration --------------------------------------------------------------------


class _Renderer(RendererHTML):
    def fence(self, tokens, idx, options, env) -> str:
        info = mdTrim(unescapeAll(tokens[idx].info)) if tokens[idx].info else ""
        lang = MD_TRIM_RE.split(info, maxsplit=1)[0] if info else ""
        return _code_block_html(tokens[idx].content, lang, env.get("highlight", True))

    def code_block(self, tokens, idx, options, env) -> str:
        return _code_block_html(tokens[idx].content, "", False)

    def image(self, tokens, idx, options, env) -> str:
        # Remote images could track readers and the CSP forbids them: show a link instead.
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children, options, env)
        src = token.attrGet("src") or ""
        if not WEB_URL_RE.match(src) or _inside_link(tokens, idx):
            return escapeHtml(alt)
        return f'<a href="{escapeHtml(src)}">{escapeHtml(alt or src)}</a>'

    def table_open(self, tokens, idx, options, env) -> str:
        return '<div class="table-wrap"><table>\n'

    def table_close(self, tokens, idx, options, env) -> str:
        return "</table></div>\n"

    def th_open(self, tokens, idx, options, env) -> str:
        return _cell_open(tokens[idx])

    def td_open(self, tokens, idx, options, env) -> str:
        return _cell_open(tokens[idx])


def _cell_open(token: Token) -> str:
    # markdown-it aligns with a style attribute; the sanitiser allows classes, not styles.
    style = str(token.attrGet("style") or "")
    align = style.removeprefix("text-align:")
    if style and align in ("left", "center", "right"):
        return f'<{token.tag} class="align-{align}">'
    return f"<{token.tag}>"


def _inside_link(tokens: Sequence[Token], idx: int) -> bool:
    depth = 0
    for token in tokens[:idx]:
        depth += (token.type == "link_open") - (token.type == "link_close")
    return depth > 0


def _code_block_html(code: str, lang: str, highlight_code: bool) -> str:
    body = _highlight(code, lang) if highlight_code else None
    return (
        '<div class="codeblock"><div class="codeblock-bar">'
        f'<span class="codeblock-lang">{escapeHtml(lang)}</span>'
        '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>'
        f'<pre class="codehilite"><code>{escapeHtml(code) if body is None else body}</code></pre></div>\n'
    )


_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str) -> str | None:
    """Highlighted HTML, or None when the language is unknown (never guessed: slow and often wrong)."""
    lexer = _lexer(lang.lower()) if lang else None
    if lexer is None or not code or len(code) > MAX_HIGHLIGHT_CHARS:
        return None
    return highlight(code, lexer, _FORMATTER)


@functools.lru_cache(maxsize=256)
def _lexer(name: str):
    try:
        return get_lexer_by_name(name, stripnl=False)
    except ClassNotFound:
        return None


def _parse_inline(state: StateCore) -> None:
    """markdown-it's core "inline" rule, also marking inline tokens that looked up a reference."""
    table = state.env.get("references")
    tracking = isinstance(table, _ReferenceTable)
    for token in state.tokens:
        if token.type == "inline":
            if tracking:
                table.consulted = False
            token.children = token.children or []
            state.md.inline.parse(token.content, state.md, state.env, token.children)
            if tracking and table.consulted:
                token.meta["uses_references"] = True


def _linkify_emails(state: StateCore) -> None:
    # URLs with a scheme are linkified by the inline rule. This core pass exists for bare e-mail
    # addresses, and linkify-it's pretest costs ~0.2 µs per character, so only text with an "@"
    # goes through it.
    inlines = [token for token in state.tokens if token.type == "inline" and "@" in token.content]
    if inlines:
        core_linkify(StateCore(state.src, state.md, state.env, inlines))


def _drop_unsafe_links(state: StateCore) -> None:
    """Keep the text of links whose URL is not http(s) or mailto, but not the link itself."""
    for token in state.tokens:
        if token.type == "inline" and any(child.type == "link_open" for child in token.children):
            token.children = _without_unsafe_links(token.children)


def _without_unsafe_links(children: list[Token]) -> list[Token]:
    kept, dropping = [], []
    for child in children:
        if child.type == "link_open":
            dropping.append(not LINK_RE.match(str(child.attrGet("href") or "")))
            if dropping[-1]:
                continue
        elif child.type == "link_close" and dropping.pop():
            continue
        kept.append(child)
    return kept


def _build_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True}, renderer_cls=_Renderer)
    md.enable(["table", "strikethrough", "linkify"])
    # Without a scheme, "setup.py" and "README.md" would become links (.py and .md are TLDs).
    md.linkify.set({"fuzzy_link": False})
    md.use(tasklists_plugin)
    md.core.ruler.at("inline", _parse_inline)
    md.core.ruler.at("linkify", _linkify_emails)
    md.core.ruler.after("linkify", "drop_unsafe_links", _drop_unsafe_links)
    # The streaming tail re-parses the same links many times; URL normalisation is pure and costly.
    md.normalizeLink = functools.lru_cache(maxsize=1024)(md.normalizeLink)
    md.normalizeLinkText = functools.lru_cache(maxsize=1024)(md.normalizeLinkText)
    return md


_md = _build_parser()
