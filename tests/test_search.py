"""Search over the user's own conversations: on SQLite by substring, on Postgres by full text (the suite runs
on both). Results link to the exact message and the snippet can never carry HTML from a message."""

import pytest
from django.db import connection
from django.urls import reverse

from chat import search
from chat.models import Conversation, Message
from chat.turns.records import PAGE_SIZE as MESSAGE_PAGE_SIZE

pytestmark = pytest.mark.django_db


def chat(owner, title, *texts):
    conv = Conversation.objects.create(owner=owner, title=title)
    for n, text in enumerate(texts):
        Message.objects.create(conversation=conv, role="user" if n % 2 == 0 else "assistant", content=text)
    return conv


def results(client, query, **params):
    response = client.get(reverse("chat:search"), {"q": query, **params})
    assert response.status_code == 200
    return response


def test_finds_a_message_and_links_to_it(alice, alice_client):
    conv = chat(alice, "Trip planning", "Plan a trip to Lisbon", "Lisbon has trams and custard tarts.")
    reply = conv.messages.get(role="assistant")
    page = results(alice_client, "custard").content.decode()
    assert "Trip planning" in page
    assert f'href="/c/{conv.public_id}/?at={reply.public_id}#m-{reply.public_id}"' in page
    assert "<mark>custard</mark>" in page


def test_titles_are_searched_too(alice, alice_client):
    conv = chat(alice, "Bakery names", "Suggest names please")
    hits = search.search(alice, "bakery")
    assert [hit.url for hit in hits] == [conv.get_absolute_url()]
    assert hits[0].role == "title"


def test_a_stranger_never_sees_another_users_conversations(alice, charlie, client):
    chat(alice, "Alice's private plans", "my private diary entry about pancakes")
    client.force_login(charlie)
    page = results(client, "pancakes").content.decode()
    assert "Nothing matches" in page and "diary" not in page
    assert search.search(charlie, "private") == []


def test_message_text_is_escaped_in_snippets(alice, alice_client):
    chat(alice, "<b>bold title</b>", 'look <img src=x onerror="alert(1)"> <script>alert(2)</script> exploit here')
    page = results(alice_client, "exploit").content.decode()
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "<mark>exploit</mark>" in page  # (Postgres' headline drops tags; SQLite's snippet escapes them)
    assert "<b>bold title</b>" not in page


def test_a_message_cannot_forge_a_highlight(alice):
    chat(alice, "Forgery", f"{search.START}look{search.STOP} forged words <i>")
    [hit] = search.search(alice, "forged")
    assert "<i>" not in hit.snippet
    assert hit.snippet.count("<mark>") == hit.snippet.count("</mark>") == 1


def test_newest_first_when_equally_relevant(alice):
    old = chat(alice, "One", "zebra crossing")
    new = chat(alice, "Two", "zebra crossing")
    assert [hit.conversation_title for hit in search.search(alice, "zebra")] == ["Two", "One"]
    assert old.pk < new.pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ranking is Postgres full-text search")
def test_postgres_ranks_the_most_relevant_first_and_understands_websearch(alice):
    chat(alice, "Many", "python python python snakes and python")
    chat(alice, "Few", "python once, then many other words about something else entirely")
    assert search.search(alice, "python")[0].conversation_title == "Many"
    assert [h.conversation_title for h in search.search(alice, "python -snakes")] == ["Few"]
    assert [h.conversation_title for h in search.search(alice, '"other words"')] == ["Few"]


def test_multiple_words_must_all_match(alice):
    chat(alice, "A", "red apples")
    chat(alice, "B", "green apples")
    assert [hit.conversation_title for hit in search.search(alice, "red apples")] == ["A"]


def test_results_are_paginated_by_twenty(alice, alice_client):
    conv = Conversation.objects.create(owner=alice, title="Numbers")
    Message.objects.bulk_create(
        Message(conversation=conv, role="user", content=f"walrus fact {n}") for n in range(25)
    )
    first = results(alice_client, "walrus")
    assert len(first.context["page"].object_list) == 20
    second = results(alice_client, "walrus", page=2)
    assert len(second.context["page"].object_list) == 5
    assert "Page 2 of 2" in second.content.decode()


def test_a_blank_query_shows_no_results(alice_client):
    response = results(alice_client, "   ")
    assert response.context["page"].paginator.count == 0
    assert "Nothing matches" not in response.content.decode()


def test_search_needs_a_login(client):
    response = client.get(reverse("chat:search"), {"q": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_conversation_opens_at_an_old_message(alice, alice_client):
    conv = Conversation.objects.create(owner=alice, title="Long")
    for n in range(MESSAGE_PAGE_SIZE + 30):
        Message.objects.create(conversation=conv, role="user", content=f"message number {n}")
    target = conv.messages.get(content="message number 3")
    plain = alice_client.get(conv.get_absolute_url()).content.decode()
    assert f'id="m-{target.public_id}"' not in plain
    page = alice_client.get(conv.get_absolute_url(), {"at": str(target.public_id)}).content.decode()
    assert f'id="m-{target.public_id}"' in page
    assert "message number 79" in page  # everything after it too
    assert "data-older-url" in page  # and the three before it load on scroll


def test_an_unknown_or_foreign_at_is_ignored(alice, charlie, alice_client):
    conv = chat(alice, "Mine", "hello")
    other = chat(charlie, "Theirs", "secret")
    foreign = other.messages.get()
    for at in ("not-a-uuid", str(foreign.public_id)):
        page = alice_client.get(conv.get_absolute_url(), {"at": at}).content.decode()
        assert "hello" in page and "secret" not in page


def test_the_sidebar_has_a_search_box(alice_client):
    page = alice_client.get(reverse("chat:index")).content.decode()
    assert f'action="{reverse("chat:search")}"' in page and 'aria-keyshortcuts="/"' in page
