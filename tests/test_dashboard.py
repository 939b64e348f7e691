"""The usage dashboard and its CSV, checked against a small set of replies whose figures are known."""

import csv
import datetime
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from chat.review import reporting
from tests import admin_helpers as h

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/chat/conversation/dashboard/"
SONNET, HAIKU = "claude-4-5-sonnet", "claude-4-5-haiku"


def day_start(days_ago):
    """Midnight ``days_ago`` days ago: always in the past, whatever time the test runs."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - datetime.timedelta(days=days_ago)


@pytest.fixture
def usage(alice, charlie):
    """Seven-day figures: 5 replies (one still streaming), 1,310 tokens in, 655 out, 1 error, 1 interrupted."""
    a = h.conversation(alice, "alice's chat")
    h.message(a, "user", "question", created=day_start(0))  # user messages are not requests
    h.message(a, model=SONNET, prompt=100, completion=50, created=day_start(0), ttft=1.0, duration=3)
    h.message(a, model=SONNET, prompt=200, completion=100, status="error", error="boom", created=day_start(0))
    h.message(a, model=HAIKU, prompt=10, completion=5, created=day_start(1), ttft=2.0, duration=2)
    c = h.conversation(charlie, "charlie's chat")
    h.message(c, model=SONNET, prompt=1000, completion=500, status="interrupted", created=day_start(2), ttft=3.0)
    h.message(c, model=SONNET, status="streaming", created=day_start(2), ttft=4.0)
    # Inside 30 days but not 7; and outside every window.
    h.message(c, model=SONNET, prompt=7, completion=7, created=day_start(10), ttft=10.0)
    h.message(c, model=SONNET, prompt=9, completion=9, created=day_start(200), ttft=20.0)


def figures(days=7):
    win = reporting.window(days)
    return win, reporting.replies(win)


def test_totals(usage):
    _, replies = figures()
    totals = reporting.totals(replies)
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens, totals.total_tokens) == (5, 1310, 655,
                                                                                                       1965)
    assert (totals.errors, totals.interrupted, totals.finished) == (1, 1, 4)
    assert totals.error_rate == 0.25
    assert reporting.active_users(replies) == 2


def test_windows(usage):
    assert reporting.totals(figures(30)[1]).requests == 6
    assert reporting.totals(figures(90)[1]).prompt_tokens == 1317
    assert reporting.window(12345).days == reporting.DEFAULT_WINDOW


def test_per_day_fills_quiet_days(usage):
    win, replies = figures()
    days = reporting.per_day(replies, win)
    assert [day for day, _ in days] == [timezone.localdate() - datetime.timedelta(days=n) for n in range(6, -1, -1)]
    by_age = {(timezone.localdate() - day).days: u for day, u in days}
    assert (by_age[0].requests, by_age[0].total_tokens, by_age[0].errors) == (2, 450, 1)
    assert (by_age[1].requests, by_age[1].total_tokens) == (1, 15)
    assert (by_age[2].requests, by_age[2].total_tokens, by_age[2].interrupted) == (2, 1500, 1)
    assert all(by_age[n] == reporting.Usage() for n in (3, 4, 5, 6))


def test_per_model_and_top_users(usage, alice, charlie):
    _, replies = figures()
    models = dict(reporting.per_model(replies))
    assert (models[SONNET].requests, models[SONNET].total_tokens, models[SONNET].errors) == (4, 1950, 1)
    assert (models[HAIKU].requests, models[HAIKU].total_tokens) == (1, 15)
    top = reporting.top_users(replies)
    assert [(user_id, name, u.total_tokens, u.requests) for user_id, name, u in top] == [
        (charlie.pk, "charlie", 1500, 2), (alice.pk, "alice", 465, 3)
    ]


def test_time_to_first_token_percentiles(usage):
    _, replies = figures()
    assert reporting.ttft_percentiles(replies) == {50: 2.0, 90: 4.0, 99: 4.0}
    assert reporting.ttft_percentiles(reporting.replies(reporting.window(30))) == {50: 3.0, 90: 10.0, 99: 10.0}


def test_nearest_rank():
    values = [float(n) for n in range(1, 11)]
    assert [reporting.nearest_rank(values, p) for p in (1, 50, 90, 99, 100)] == [1.0, 5.0, 9.0, 10.0, 10.0]
    assert reporting.nearest_rank([], 50) is None
    assert reporting.nearest_rank([7.0], 99) == 7.0


def test_bar_chart_geometry():
    bars, peak = reporting.bar_chart([("a", 0), ("b", 5), ("c", 10)], width=300, height=160)
    assert peak == 10
    assert [(b.x, b.y, b.width, b.height) for b in bars] == [(10.0, 160, 80.0, 0), (110.0, 80.0, 80.0, 80.0),
                                                             (210.0, 0.0, 80.0, 160.0)]
    assert reporting.bar_chart([]) == ([], 0)
    assert all(bar.height == 0 for bar in reporting.bar_chart([("a", 0), ("b", 0)])[0])


def test_dashboard_page_shows_the_figures(rita_client, usage):
    response = rita_client.get(DASHBOARD, {"days": 7})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="total-requests">5<' in html
    assert 'id="total-tokens">1,965<' in html
    assert 'id="error-rate">25.0%<' in html
    assert 'id="interrupted">1<' in html
    assert 'id="active-users">2<' in html
    assert 'id="ttft-p50">2.00 s<' in html and 'id="ttft-p90">4.00 s<' in html
    # Top users heaviest first, linking to their conversations.
    assert html.index(">charlie</a>") < html.index(">alice</a>")
    assert "?owner=charlie" in html
    # Two server-drawn charts, one bar per day, no script at all.
    assert html.count('<rect class="bar"') == 14
    assert "<script" not in html.split("<body", 1)[1].split('id="content"', 1)[1]
    assert "<title>" in html and "1500 tokens" in html


def test_dashboard_defaults_to_thirty_days(rita_client, usage):
    response = rita_client.get(DASHBOARD, {"days": "junk"})
    assert response.context["window"].days == 30
    assert 'id="total-requests">6<' in response.content.decode()
    assert response.content.decode().count('<rect class="bar"') == 60


def test_dashboard_without_data(rita_client):
    html = rita_client.get(DASHBOARD).content.decode()
    assert 'id="total-requests">0<' in html and 'id="ttft-p50">–<' in html and "No replies in this window." in html


def test_dashboard_query_count(rita_client, usage, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = rita_client.get(DASHBOARD, {"days": 90})
    # The count is of the whole page with its figures, not of a redirect or an error page.
    assert response.status_code == 200
    assert 'id="total-requests">6<' in response.content.decode()


def test_csv_download(rita_client, usage):
    response = rita_client.get(reverse("admin:chat_conversation_dashboard_csv"), {"days": 7})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="usage-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == reporting.CSV_HEADER
    today = timezone.localdate()
    summary = [(r["date"], r["user"], r["model"], r["requests"], r["total_tokens"], r["errors"], r["interrupted"])
               for r in rows]
    assert summary == [
        ((today - datetime.timedelta(days=2)).isoformat(), "charlie", SONNET, "2", "1500", "0", "1"),
        ((today - datetime.timedelta(days=1)).isoformat(), "alice", HAIKU, "1", "15", "0", "0"),
        (today.isoformat(), "alice", SONNET, "2", "450", "1", "0"),
    ]


def test_csv_cells_cannot_become_spreadsheet_formulas(rita_client, django_user_model):
    mallory = django_user_model.objects.create_user("=HYPERLINK(1)")
    conv = h.conversation(mallory)
    h.message(conv, model="@model", prompt=1, completion=1)
    text = rita_client.get(reverse("admin:chat_conversation_dashboard_csv")).content.decode()
    assert "'=HYPERLINK(1)" in text and "'@model" in text
