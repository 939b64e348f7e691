"""Markdown → safe HTML for whole messages: one renderer for the chat, the admin and exports.

markdown-it-py (chat/rendering/parser.py), Pygments for fenced code (chat/rendering/codeblocks.py), nh3 as the final
allow-list (chat/rendering/sanitize.py). A document is rendered one top-level block at a time, each block sanitised
on its own, so the fragments a ``StreamRenderer`` (chat/rendering/stream.py) commits while a reply streams are
byte-identical to what ``render_markdown`` produces for the finished text.
"""

from collections.abc import Sequence

from markdown_it.token import Token

from chat.rendering.parser import normalize, parse, render, top_level_blocks
from chat.rendering.sanitize import sanitize_html

__all__ = ["render_block", "render_markdown", "render_user_text"]


def render_markdown(text: str) -> str:
    """Render Markdown to sanitised HTML. Raw HTML in the input is shown as text, images become
    links, only http(s) and mailto links survive, and every link opens in a new tab with
    rel="noopener noreferrer nofollow"."""
    tokens, _ = parse(normalize(text), {})
    return "".join(render_block(block) for block in top_level_blocks(tokens))


def render_user_text(text: str) -> str:
    """Render what a person typed. People paste Markdown and code into chat as often as the
    model writes it, so their messages go through the same renderer: one code path to keep safe,
    and a pasted snippet looks the same on both sides of the conversation."""
    return render_markdown(text)


def render_block(block: Sequence[Token]) -> str:
    """One top-level block as final, highlighted and sanitised HTML."""
    return sanitize_html(render(block, highlight=True))
