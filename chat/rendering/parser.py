"""markdown-it-py configured for the chat, and the token-level steps both renderers share.

CommonMark plus tables, strikethrough, linkify and task lists, raw HTML off; fenced code through
chat/rendering/codeblocks.py; images shown as links; links that are not http(s) or mailto keep only their text;
inline tokens that looked up a link reference are marked (``uses_references``), which the streaming renderer needs.
"""

import functools
import re
from collections.abc import Iterator, Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import MD_TRIM_RE, escapeHtml, mdTrim, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.rules_core import linkify as core_linkify
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin

from chat.rendering.codeblocks import code_block_html

LINK_RE = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
WEB_URL_RE = re.compile(r"https?://", re.IGNORECASE)


def top_level_blocks(tokens: list[Token]) -> Iterator[list[Token]]:
    start = depth = 0
    for index, token in enumerate(tokens):
        depth += token.nesting
        if depth == 0:
            yield tokens[start:index + 1]
            start = index + 1


def normalize(text: str) -> str:
    # Newlines as markdown-it normalises them, done up front so line numbers match the stored text;
    # lone surrogates (JSON can carry them) would make nh3 raise.
    return _SURROGATE_RE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def render(tokens: Sequence[Token], highlight: bool) -> str:
    return PARSER.renderer.render(tokens, PARSER.options, {"highlight": highlight})


def parse(text: str, references: dict[str, dict]) -> tuple[list[Token], dict]:
    """Tokens for text, given the reference definitions already known, and the definitions after."""
    table = ReferenceTable(references)
    return PARSER.parse(text, {"references": table}), table


class ReferenceTable(dict):
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


class _Renderer(RendererHTML):
    def fence(self, tokens, idx, options, env) -> str:
        info = mdTrim(unescapeAll(tokens[idx].info)) if tokens[idx].info else ""
        lang = MD_TRIM_RE.split(info, maxsplit=1)[0] if info else ""
        return code_block_html(tokens[idx].content, lang, env.get("highlight", True))

    def code_block(self, tokens, idx, options, env) -> str:
        return code_block_html(tokens[idx].content, "", False)

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


def _parse_inline(state: StateCore) -> None:
    """markdown-it's core "inline" rule, also marking inline tokens that looked up a reference."""
    table = state.env.get("references")
    tracking = isinstance(table, ReferenceTable)
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


PARSER = _build_parser()
