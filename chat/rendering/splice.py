"""The splice fast path of the streaming renderer: text typed at the end of the open region is put into the
previous HTML instead of parsing the region again, in the cases where that is exact (see ``OpenRegion``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from markdown_it.token import Token

from chat.rendering.finality import closes_fence
from chat.rendering.parser import PARSER, ReferenceTable, render
from chat.rendering.sanitize import sanitize_html


@dataclass(frozen=True)
class OpenRegion:
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
    def after_render(cls, html: str, length: int, tokens: list[Token], source: str, references: dict) -> OpenRegion:
        line = source.rsplit("\n", 1)[-1]
        if tokens and tokens[-1].type == "fence":
            if not (_is_open_fence(tokens[-1], source.split("\n")) and html.endswith(_CODE_END)):
                return cls(html, length)
            return cls(html, length, len(html) - len(_CODE_END), tokens[-1].markup[0], line)
        index = _last_inline(tokens, source)
        if index is None:
            return cls(html, length)
        inline = tokens[index]
        inline_html = sanitize_html(render([inline], highlight=False))
        end = len(html) - len(render(tokens[index + 1:], highlight=False))  # closing tags only
        start = end - len(inline_html)
        if html[start:end] != inline_html:
            return cls(html, length)
        content = inline.content + line[len(line.rstrip(" ")):]
        plain = _splices_plain_text(inline.children, line)
        marker = _tight_list_marker(tokens, line) if html.endswith(("</ul>\n", "</ol>\n")) else ""
        list_end = len(html) - len("</ul>\n")
        return cls(html, length, end, "", line, start, content, plain, references, marker, list_end)

    def append(self, added: str) -> OpenRegion | None:
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

    def _append_code(self, added: str) -> OpenRegion | None:
        line = self.line + added
        if re.search(rf"(?m)^[ \t]*{re.escape(self.fence)}", line):
            return None  # a line that may close the fence
        line = line.rsplit("\n", 1)[-1]
        if line and not line.strip(" \t"):
            return None  # markdown-it leaves a last line of only spaces out of the content
        return self._splice(self.end, self.end, _escape_text(added), length=self.length + len(added), line=line)

    def _type(self, text: str) -> OpenRegion | None:
        """Text typed on the current line, inside its inline content."""
        if not _STAYS_ON_LINE_RE.fullmatch(text):
            return None
        line, content = self.line + text, self.content + text
        if self.plain and _PLAIN_RE.fullmatch(text):
            shown = len(self.content.rstrip(" "))
            return self._splice(self.end, self.end, content.rstrip(" ")[shown:], line=line, content=content)
        tokens = PARSER.parseInline(content.rstrip(" "), {"references": ReferenceTable(self.references)})
        inline_html = sanitize_html(render(tokens, highlight=False))
        plain = _splices_plain_text(tokens[0].children, line)
        return self._splice(self.start, self.end, inline_html, line=line, content=content, plain=plain)

    def _add_item(self, line: str) -> OpenRegion | None:
        """A new line of the list: one more item when it is the marker, a space and a paragraph
        that starts with a letter, maybe after one or two "*", "_" or one "`" (so it is not a
        nested list, rule, heading, quote, fence, task or link definition)."""
        item = re.fullmatch(rf"({_marker_re(self.marker)} )((?=(?:\*\*?|__?|`)?[^\W\d_]).*)", line)
        if item is None:
            return None
        at = self.list_end
        opened = self._splice(at, at, "<li></li>\n", start=at + 4, end=at + 4, line=item[1], content="", plain=False)
        return opened._type(item[2])

    def _splice(self, at: int, until: int, insert: str, **changes) -> OpenRegion:
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
    closed = closes_fence(lines[end - 1], fence.markup)
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
