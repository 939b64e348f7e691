"""Rendering a reply while it streams: each finished block once, only the open tail again (StreamRenderer).

The committed fragments concatenate to exactly ``render_markdown`` of the finished text (chat/rendering/markdown.py);
which blocks are final is decided in chat/rendering/finality.py, the splice fast path is chat/rendering/splice.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from markdown_it.token import Token

from chat.rendering.finality import count_final, count_without_references, line_offsets, move_definitions
from chat.rendering.markdown import render_block
from chat.rendering.parser import normalize, parse, render, top_level_blocks
from chat.rendering.sanitize import sanitize_html
from chat.rendering.splice import OpenRegion

__all__ = ["RenderUpdate", "StreamRenderer"]

# Above ~8 KB of open text the tail is re-rendered less often, so that a long open block (a huge list,
# or text held back by a possible reference link) costs at most a few percent of a core per stream.
TAIL_CHARS_PER_SECOND = 100_000


@dataclass(frozen=True)
class RenderUpdate:
    """What the browser needs after a flush: append `committed` (each final, sent once, in order)
    before its tail element, then replace the tail element's content with `tail`."""

    committed: list[str]
    tail: str


class StreamRenderer:
    """Renders a reply that grows by deltas, rendering each finished block once.

    feed() appends text; flush() returns what changed since the last update (or None); finish()
    commits everything. After finish(), the concatenation of every committed fragment equals
    render_markdown(full text), whatever the deltas were.

    The text has three regions: committed blocks (sent, never touched again); held blocks, final
    but after a block that looked up a link reference, so they wait for finish() (see finality.py);
    and the open region, re-parsed when an update is due and shown, after the held blocks, as the
    tail. Fenced code in the tail is not highlighted: a long open fence would cost Pygments time on
    every update. Plain words appended to the end of a paragraph, list item or open fence are
    spliced into the previous tail instead of re-parsing it (see `OpenRegion`).
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
        self._open = OpenRegion()
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
        self._text += normalize(delta)

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
        tokens, _ = parse(self._text[self._held_start:], self._references)
        committed = [render_block(block) for block in top_level_blocks(tokens)]
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
        tokens, found = parse(source, known)
        blocks = list(top_level_blocks(tokens))
        lines = source.split("\n")
        final = count_final(blocks, lines)
        committed = self._settle(blocks[:final], lines, {k: v for k, v in found.items() if k not in known})
        rest = [token for block in blocks[final:] for token in block]
        html = sanitize_html(render(rest, highlight=False)) if rest else ""
        self._open = OpenRegion.after_render(html, len(self._text), rest, source, found)
        return committed

    def _settle(self, blocks: list[list[Token]], lines: list[str], definitions: dict[str, dict]) -> list[str]:
        """Commit the final blocks that may be sent now, hold the others; move the open region on."""
        if not blocks:
            return []
        holding = self._held_start < self._start
        sendable = 0 if holding else count_without_references(blocks)
        html = [render_block(block) for block in blocks]
        offset = line_offsets(lines)
        if sendable:
            end = blocks[sendable - 1][0].map[1]
            move_definitions(definitions, end, self._references)
            self._held_start = self._start + offset[end]
        move_definitions(definitions, blocks[-1][0].map[1], self._held_references)
        self._start += offset[blocks[-1][0].map[1]]
        self._committed.extend(html[:sendable])
        self._held_html += "".join(html[sendable:])
        return html[:sendable]
