"""Usage figures for the admin dashboard and its CSV: tokens, requests, errors and latency of replies.

A "request" is one assistant reply (one turn of the chat). Every figure is computed over the replies created in
a window of whole days ending today, in the site's time zone. Aggregation happens in the database; only the
time-to-first-token values come back row by row, to compute percentiles the same way on every database.
"""

import csv
import datetime
import io
import math
from dataclasses import dataclass

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from chat.models import Message

WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30
PERCENTILES = (50, 90, 99)
TOP_USERS = 10
# Enough replies for stable percentiles; a bigger window samples its most recent replies.
MAX_LATENCY_SAMPLES = 50_000

Status = Message.Status


@dataclass(frozen=True)
class Usage:
    """Counts for one group of replies (a day, a user, a model, or all of them)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    interrupted: int = 0
    finished: int = 0

    @property
    def total_tokens(self):
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self):
        """Errors over finished replies (a reply still streaming has no outcome yet); 0.0 when none."""
        return self.errors / self.finished if self.finished else 0.0

    @property
    def error_percent(self):
        return 100 * self.error_rate


@dataclass(frozen=True)
class Window:
    days: int
    start: datetime.datetime
    end: datetime.datetime

    @property
    def dates(self):
        first = timezone.localdate(self.start)
        return [first + datetime.timedelta(days=offset) for offset in range(self.days)]


def window(days=DEFAULT_WINDOW, now=None):
    """The last ``days`` whole days up to ``now``, today included; unknown sizes fall back to the default."""
    days = days if days in WINDOWS else DEFAULT_WINDOW
    now = now or timezone.now()
    today = timezone.localdate(now)
    start = datetime.datetime.combine(today - datetime.timedelta(days=days - 1), datetime.time.min)
    return Window(days, timezone.make_aware(start), now)


def replies(win):
    return Message.objects.filter(
        role=Message.Role.ASSISTANT, created_at__gte=win.start, created_at__lte=win.end
    )


def totals(queryset):
    return Usage(**queryset.aggregate(**_usage_aggregates()))


def per_day(queryset, win):
    """One Usage per day of the window, oldest first, days without replies included as zeros."""
    rows = queryset.annotate(day=TruncDate("created_at")).values("day").annotate(**_usage_aggregates())
    by_day = {row.pop("day"): Usage(**row) for row in rows}
    return [(day, by_day.get(day, Usage())) for day in win.dates]


def per_model(queryset):
    rows = queryset.values("model").annotate(**_usage_aggregates()).order_by("-requests", "model")
    return [(row.pop("model") or "(none)", Usage(**row)) for row in rows]


def top_users(queryset, limit=TOP_USERS):
    """The users with the most tokens: ``(user id, username, Usage)``, heaviest first."""
    rows = (
        queryset.values("conversation__owner_id", "conversation__owner__username")
        .annotate(**_usage_aggregates())
        .annotate(tokens=F("prompt_tokens") + F("completion_tokens"))
        .order_by("-tokens", "-requests", "conversation__owner__username")[:limit]
    )
    return [
        (row.pop("conversation__owner_id"), row.pop("conversation__owner__username"), _usage(row)) for row in rows
    ]


def active_users(queryset):
    return queryset.values("conversation__owner_id").distinct().count()


def ttft_percentiles(queryset, percentiles=PERCENTILES):
    """Time to first token in seconds at each percentile (nearest rank), None where there is no data."""
    ttft = ExpressionWrapper(F("first_token_at") - F("created_at"), output_field=DurationField())
    values = list(
        queryset.filter(first_token_at__isnull=False)
        .order_by("-created_at")
        .annotate(ttft=ttft)
        .values_list("ttft", flat=True)[:MAX_LATENCY_SAMPLES]
    )
    seconds = sorted(value.total_seconds() for value in values)
    return {p: nearest_rank(seconds, p) for p in percentiles}


def nearest_rank(sorted_values, percentile):
    """The smallest value with at least ``percentile`` % of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


CSV_HEADER = ["date", "user", "model", "requests", "prompt_tokens", "completion_tokens", "total_tokens",
              "errors", "interrupted"]


def csv_text(queryset):
    """Usage per day, user and model as CSV (the finest grain: pivot it in a spreadsheet)."""
    rows = (
        queryset.annotate(day=TruncDate("created_at"))
        .values("day", "conversation__owner__username", "model")
        .annotate(**_usage_aggregates())
        .order_by("day", "conversation__owner__username", "model")
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        usage = _usage(row)
        writer.writerow([
            row["day"].isoformat(), _cell(row["conversation__owner__username"]), _cell(row["model"]),
            usage.requests, usage.prompt_tokens, usage.completion_tokens, usage.total_tokens,
            usage.errors, usage.interrupted,
        ])
    return out.getvalue()


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


def bar_chart(points, width=720, height=160):
    """Geometry of a bar chart of ``(label, value)`` points in a width × height box, bottom-aligned.

    Returns ``(bars, peak)``; drawn server-side as SVG, so the page needs no script.
    """
    peak = max((value for _, value in points), default=0)
    slot = width / max(len(points), 1)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = round(height * value / peak, 1) if peak else 0
        bars.append(Bar(round(index * slot + slot * 0.1, 1), round(height - bar_height, 1),
                        round(slot * 0.8, 1), bar_height, label, value))
    return bars, peak


def _usage_aggregates():
    return {
        "requests": Count("id"),
        "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
        "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
        "errors": Count("id", filter=Q(status=Status.ERROR)),
        "interrupted": Count("id", filter=Q(status=Status.INTERRUPTED)),
        "finished": Count("id", filter=~Q(status=Status.STREAMING)),
    }


def _usage(row):
    return Usage(**{name: row[name] for name in _usage_aggregates()})


def _cell(value):
    # A spreadsheet would run a cell starting with one of these as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
