"""Built-in tools: a safe calculator, the time in a zone, and search limited to the caller's own conversations."""

import json
from datetime import datetime, timezone

import pytest

from chat.turns import tools
from chat.models import Conversation, Message


def run(name, arguments, user=None):
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return tools.run(name, raw, user=user)


@pytest.mark.parametrize(
    "expression, expected",
    [("1 + 2 * 3", "7"), ("(1 + 2) * 3", "9"), ("2 ** 10", "1024"), ("7 / 2", "3.5"), ("7 // 2", "3"),
     ("-7 % 3", "2"), ("-(2.5)", "-2.5"), ("10 / 4 * 2", "5"), ("2 ** -1", "0.5"), ("1e3 + 1", "1001")],
)
def test_the_calculator_does_arithmetic(expression, expected):
    assert tools.calculate(expression) == expected


@pytest.mark.parametrize(
    "expression, reason",
    [
        ("__import__('os').system('id')", "unsupported"),
        ("2**10**10", "exponents are limited"),
        ("10 ** 400", "too large"),
        ("x + 1", "unsupported"),
        ("(1).real", "unsupported"),
        ("[1, 2]", "unsupported"),
        ("'a' * 3", "unsupported"),
        ("1 if 1 else 2", "unsupported"),
        ("lambda: 1", "unsupported"),
        ("1 / 0", "division by zero"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 +", "not valid arithmetic"),
        ("1" * 201, "longer than 200"),
        ("", "non-empty"),
    ],
)
def test_the_calculator_refuses_anything_but_arithmetic(expression, reason):
    with pytest.raises(tools.ToolError, match=reason):
        tools.calculate(expression)


async def test_a_refusal_comes_back_as_an_error_result_not_an_exception():
    result = await run("calculator", {"expression": "__import__('os')"})
    assert result.is_error
    assert result.content.startswith("calculator failed: unsupported element")


async def test_bad_calls_are_error_results():
    assert (await run("rm_rf", {})).is_error
    assert "Unknown tool 'rm_rf'" in (await run("rm_rf", {})).content
    assert (await run("calculator", "{not json")).content == "The arguments are not valid JSON."
    assert (await run("calculator", "[1, 2]")).content == "The arguments must be a JSON object."
    assert "must be a non-empty string" in (await run("calculator", {"expression": 42})).content
    assert "IANA" in (await run("current_time", {"timezone": ["Europe/Paris"]})).content


async def test_a_tool_that_works_returns_its_text():
    assert await run("calculator", {"expression": "6 * 7"}) == tools.ToolResult("42", is_error=False)


def test_the_time_in_a_zone_is_local_and_labelled():
    moment = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
    assert tools.current_time("Europe/Paris", now=moment) == "2026-01-15T13:00:00+01:00 (CET, Thursday)"
    assert tools.current_time("Asia/Kolkata", now=moment).startswith("2026-01-15T17:30:00+05:30")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "not a zone"])
def test_an_unknown_zone_is_a_clear_error(zone):
    with pytest.raises(tools.ToolError, match="unknown time zone"):
        tools.current_time(zone)


async def test_the_time_tool_runs():
    result = await run("current_time", {"timezone": "UTC"})
    assert not result.is_error and "(UTC," in result.content


def test_definitions_are_stable_and_in_the_openai_shape():
    first, second = tools.definitions(), tools.definitions()
    assert json.dumps(first) == json.dumps(second)
    assert [d["function"]["name"] for d in first] == ["calculator", "current_time", "search_conversations"]
    assert all(d["type"] == "function" and d["function"]["parameters"]["type"] == "object" for d in first)
    first[0]["function"]["name"] = "changed"  # a caller's edit must not leak into the next request
    assert tools.definitions() == second


@pytest.fixture
def histories(alice, charlie):
    mine = Conversation.objects.create(owner=alice, title="Sourdough notes")
    Message.objects.create(conversation=mine, role="user", content="How long should sourdough proof?")
    theirs = Conversation.objects.create(owner=charlie, title="Charlie's sourdough")
    Message.objects.create(conversation=theirs, role="user", content="My secret sourdough recipe")
    return mine, theirs


@pytest.mark.django_db(transaction=True)
async def test_search_returns_the_callers_own_conversations_with_links(alice, histories):
    mine, _ = histories
    result = await run("search_conversations", {"query": "sourdough"}, user=alice)
    assert not result.is_error
    assert "Sourdough notes" in result.content
    assert f"/c/{mine.public_id}/" in result.content
    assert "secret" not in result.content and "Charlie" not in result.content


@pytest.mark.django_db(transaction=True)
async def test_search_never_returns_another_users_data(charlie, histories):
    result = await run("search_conversations", {"query": "proof"}, user=charlie)
    assert result.content == "No conversations match 'proof'."
