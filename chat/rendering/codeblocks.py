"""Fenced and indented code as the chat shows it: a bar with the language and a copy button, then the code,
highlighted by Pygments when the language is named and known (never guessed: slow and often wrong)."""

import functools

from markdown_it.common.utils import escapeHtml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

# Pygments needs ~1.5 ms per KB; past this a block stays plain so one huge paste can't stall a worker.
MAX_HIGHLIGHT_CHARS = 64_000


def code_block_html(code: str, lang: str, highlight_code: bool) -> str:
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
