"""Search across one user's own conversations: message text and titles.

Postgres gets full-text search (websearch syntax, ranked, highlighted by ``ts_headline``); SQLite, the laptop
default, gets a case-insensitive substring search with a snippet around the first match. Both return the same
``Hit`` shape, so the page, the tool and the tests do not care which one ran.

Snippets are safe HTML: the text is escaped and only our own highlight markers become ``<mark>``.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Replace
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.models import Conversation, Message

PAGE_SIZE = 20
# Results are gathered once and paginated in memory: past this many, refining the query beats paging.
MAX_RESULTS = 400
MAX_QUERY_CHARS = 200
SNIPPET_CHARS = 160
# Private-use characters: they cannot be confused with Markdown or HTML, and are removed from message text
# before highlighting so a message cannot forge a highlight.
START, STOP = "\ue000", "\ue001"
_CONFIG = "english"


@dataclass(frozen=True)
class Hit:
    conversation_title: str
    url: str
    marked: str  # the snippet with START/STOP around matches, unescaped
    when: datetime
    rank: float = 0.0
    role: str = ""

    @property
    def snippet(self) -> SafeString:
        """The snippet as HTML: escaped text, matches in ``<mark>``."""
        html = escape(self.marked)
        return mark_safe(html.replace(START, "<mark>").replace(STOP, "</mark>"))

    @property
    def text(self) -> str:
        """The snippet as plain text, matches in ``**``, for the model."""
        return self.marked.replace(START, "**").replace(STOP, "**")


def search(user, query, *, limit=MAX_RESULTS):
    """The user's own messages and titles matching ``query``, best first; [] for a blank query.

    Postgres orders by rank then recency, SQLite by recency. Never returns another user's data.
    """
    query = " ".join((query or "").split())[:MAX_QUERY_CHARS]
    if not query or not user.is_authenticated:
        return []
    messages = Message.objects.filter(conversation__owner=user).select_related("conversation")
    titles = Conversation.objects.for_user(user)
    if connection.vendor == "postgresql":
        hits = _postgres(messages, titles, query, limit)
        hits.sort(key=lambda hit: (hit.rank, hit.when), reverse=True)
    else:
        hits = _fallback(messages, titles, query, limit)
        hits.sort(key=lambda hit: hit.when, reverse=True)
    return hits[:limit]


def message_url(message):
    """Where a message is shown: its conversation, rendered from that message, scrolled to it."""
    base = reverse("chat:conversation", args=[message.conversation.public_id])
    return f"{base}?at={message.public_id}#m-{message.public_id}"


def _postgres(messages, titles, query, limit):
    search_query = SearchQuery(query, search_type="websearch", config=_CONFIG)
    marks = {"start_sel": START, "stop_sel": STOP, "config": _CONFIG}
    found = (
        messages.annotate(document=SearchVector("content", config=_CONFIG))
        .filter(document=search_query)
        .annotate(
            rank=SearchRank(F("document"), search_query),
            headline=SearchHeadline(_unmarked("content"), search_query, max_words=30, min_words=12, **marks),
        )
        .order_by("-rank", "-created_at")[:limit]
    )
    named = (
        titles.annotate(document=SearchVector("title", config=_CONFIG))
        .filter(document=search_query)
        .annotate(
            rank=SearchRank(F("document"), search_query),
            headline=SearchHeadline(_unmarked("title"), search_query, **marks),
        )
        .order_by("-rank", "-updated_at")[:limit]
    )
    return [_message_hit(m, m.headline, m.rank) for m in found] + [
        _title_hit(c, c.headline, c.rank) for c in named
    ]


def _fallback(messages, titles, query, limit):
    terms = [term.strip('"') for term in query.split() if term.strip('"') and not term.startswith("-")] or [query]
    message_filter, title_filter = Q(), Q()
    for term in terms:
        message_filter &= Q(content__icontains=term)
        title_filter &= Q(title__icontains=term)
    found = messages.filter(message_filter).order_by("-created_at", "-id")[:limit]
    named = titles.filter(title_filter).order_by("-updated_at", "-id")[:limit]
    return [_message_hit(m, _snippet(m.content, terms)) for m in found] + [
        _title_hit(c, _snippet(c.title, terms)) for c in named
    ]


def _message_hit(message, marked, rank=0.0):
    return Hit(
        conversation_title=message.conversation.display_title,
        url=message_url(message),
        marked=marked,
        when=message.created_at,
        rank=float(rank or 0),
        role=message.role,
    )


def _title_hit(conv, marked, rank=0.0):
    # A title match ranks a little above an equal message match: the user named that conversation.
    return Hit(conversation_title=conv.display_title, url=conv.get_absolute_url(), marked=marked,
               when=conv.updated_at, rank=float(rank or 0) * 1.1, role="title")


def _unmarked(field):
    """The field without our marker characters, so only ts_headline's own marks can become ``<mark>``."""
    return Replace(Replace(F(field), Value(START), Value("")), Value(STOP), Value(""))


def _snippet(text, terms):
    """About SNIPPET_CHARS of ``text`` around the first match, every match of every term marked."""
    text = " ".join(text.replace(START, "").replace(STOP, "").split())
    pattern = re.compile("|".join(re.escape(term) for term in terms), re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    piece = text[start : start + SNIPPET_CHARS]
    piece = ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(text) else "")
    return pattern.sub(lambda match: f"{START}{match.group(0)}{STOP}", piece)
