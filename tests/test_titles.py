"""Titles written by the model after the first reply: asked for once, cleaned, never over a rename, told to every
socket; the first title stays whenever anything goes wrong."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat.standin import demo_model
from chat.inference import ratelimit
from chat.turns import records
from chat.turns import titles
from chat.turns.title_prompt import TITLE_PROMPT
from chat.standin.api import Fault, Reply
from chat.models import Conversation, Message
from tests.sockets import next_frame

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture(autouse=True)
def _titles_on(settings):
    settings.CHAT_AUTO_TITLES = True


QUESTION = "How do I sort a list of dicts by one key in Python?"
ANSWER = "Use `sorted(rows, key=lambda row: row['name'])`."


def first_turn(conversation, text=QUESTION, answer=ANSWER, status=Message.Status.COMPLETE):
    """The first message and its finished reply, as a turn stores them; returns the reply."""
    reply = records.start_turn_records(conversation, text=text, client_id=uuid.uuid4(), model="m", worker="").reply
    return records.finish_reply(reply.pk, content=answer, status=status)


def title_of(conversation):
    return Conversation.objects.get(pk=conversation.pk).title


def rename(conversation, title):
    Conversation.objects.filter(pk=conversation.pk).update(title=title)


async def titled(conversation, **turn):
    """Finish a first turn, schedule its title and wait for it; returns (task result or None, stored title)."""
    reply = await database_sync_to_async(first_turn)(conversation, **turn)
    task = titles.schedule(conversation, reply)
    done = await task if task is not None else None
    return done, await database_sync_to_async(title_of)(conversation)


def chat_requests(api):
    return [request["body"] for request in api.requests if request["path"] == "/v1/chat/completions"]


# --- a good title ---------------------------------------------------------------------------------------------


async def test_the_models_title_replaces_the_first_one(conversation, api):
    api.enqueue(Reply(text="Sorting dicts by key"))
    assert await titled(conversation) == (True, "Sorting dicts by key")


async def test_one_small_request_without_tools_or_thinking(conversation, api, settings):
    api.enqueue(Reply(text="Sorting dicts by key"))
    await titled(conversation)
    [body] = chat_requests(api)
    assert body["max_tokens"] == titles.MAX_TOKENS and body["model"] == settings.INFERENCE_MODEL_ID
    assert "tools" not in body and "extended_thinking" not in body
    system, user = body["messages"]
    assert system == {"role": "system", "content": TITLE_PROMPT}
    assert user == {"role": "user", "content": f"<user>\n{QUESTION}\n</user>\n<assistant>\n{ANSWER}\n</assistant>"}


async def test_each_side_of_the_exchange_is_cut_short(conversation, api):
    api.enqueue(Reply(text="Long talk"))
    await titled(conversation, text="q" * 5000, answer="z" * 5000)
    content = chat_requests(api)[0]["messages"][1]["content"]
    assert content.count("q") == content.count("z") == titles.EXCERPT_CHARS


async def test_the_request_takes_its_place_in_the_upstream_budget(conversation, api, monkeypatch):
    budget, calls = ratelimit.get_budget(), []
    acquire, settle = budget.acquire, budget.settle

    async def spy_acquire(tokens, on_wait=None):
        calls.append(("acquire", tokens))
        return await acquire(tokens, on_wait)

    async def spy_settle(reservation, tokens):
        calls.append(("settle", tokens))
        await settle(reservation, tokens)

    monkeypatch.setattr(budget, "acquire", spy_acquire)
    monkeypatch.setattr(budget, "settle", spy_settle)
    api.enqueue(Reply(text="Sorting dicts", usage={"prompt_tokens": 90, "completion_tokens": 4, "total_tokens": 94}))
    await titled(conversation)
    assert [kind for kind, _ in calls] == ["acquire", "settle"]
    assert calls[0][1] >= titles.MAX_TOKENS and calls[1] == ("settle", 94)


async def test_the_title_counts_against_no_quota(conversation, api, alice):
    from django.utils import timezone

    from chat.turns import quotas

    api.enqueue(Reply(text="Sorting dicts", usage={"prompt_tokens": 500, "completion_tokens": 4, "total_tokens": 504}))
    await titled(conversation)
    mine = Message.objects.filter(conversation__owner=alice)
    assert await database_sync_to_async(quotas.tokens_today)(mine, timezone.now()) == 0


# --- cleaning -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, title",
    [
        ("Sorting dicts by key", "Sorting dicts by key"),
        ('"Sorting dicts by key."', "Sorting dicts by key"),
        ("“Sorting dicts by key”.", "Sorting dicts by key"),
        ("**Title:** Sorting   dicts\tby key", "Sorting dicts by key"),
        ("# Sorting dicts by key\n\nThis conversation is about sorting.", "Sorting dicts by key"),
        ("\n\n  'Python list sorting'  \n", "Python list sorting"),
        ("Is Python fast?", "Is Python fast?"),
        ("word " * 40, records.title_from("word " * 40)),
        ("", ""),
        ('""', ""),
        ("...", ""),
    ],
)
def test_clean(answer, title):
    assert titles.clean(answer) == title


def test_a_cleaned_title_fits_the_sidebar():
    assert len(titles.clean("x" * 500)) <= records.TITLE_CHARS


# --- the first title stays ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault("status", status=500), Fault("status", status=429), Fault("error_event", chunks=1), Fault("cut", chunks=2)],
)
async def test_a_failed_request_keeps_the_first_title(conversation, api, fault):
    api.inject(fault)
    assert await titled(conversation) == (False, records.title_from(QUESTION))


async def test_a_slow_answer_keeps_the_first_title(conversation, api, monkeypatch):
    monkeypatch.setattr(titles, "TIMEOUT", 0.3)
    api.inject(Fault("delay_first_byte", seconds=5))
    assert await titled(conversation) == (False, records.title_from(QUESTION))


@pytest.mark.parametrize("answer", ["", "  \n ", '"".'])
async def test_an_unusable_answer_keeps_the_first_title(conversation, api, answer):
    api.enqueue(Reply(text=answer, finish_reason="stop"))
    assert await titled(conversation) == (False, records.title_from(QUESTION))


async def test_a_rename_before_the_request_wins_and_nothing_is_asked(conversation, api):
    reply = await database_sync_to_async(first_turn)(conversation)
    await database_sync_to_async(rename)(conversation, "My sorting notes")
    assert await titles.schedule(conversation, reply) is False
    assert await database_sync_to_async(title_of)(conversation) == "My sorting notes"
    assert chat_requests(api) == []


async def test_a_rename_while_the_model_writes_wins(conversation, api):
    api.delay = 0.2  # between chunks: time for the owner to rename while the title streams
    api.enqueue(Reply(text="Sorting dicts by key"))
    reply = await database_sync_to_async(first_turn)(conversation)
    task = titles.schedule(conversation, reply)
    async with asyncio.timeout(5):
        while not chat_requests(api):
            await asyncio.sleep(0.01)
    await database_sync_to_async(rename)(conversation, "My sorting notes")
    assert await task is False
    assert await database_sync_to_async(title_of)(conversation) == "My sorting notes"


def test_the_update_is_conditional_on_the_first_title(conversation):
    first_turn(conversation)
    fallback = title_of(conversation)
    rename(conversation, "Mine")
    assert titles.replace_fallback(conversation.pk, fallback, "Model's") is None
    assert title_of(conversation) == "Mine"


# --- when no title is asked for -------------------------------------------------------------------------------


async def test_turned_off_by_the_setting_nothing_is_asked(conversation, api, settings):
    settings.CHAT_AUTO_TITLES = False
    assert await titled(conversation) == (None, records.title_from(QUESTION))
    assert chat_requests(api) == [] and titles.pending() == set()


@pytest.mark.parametrize("status", [Message.Status.ERROR, Message.Status.STOPPED, Message.Status.INTERRUPTED])
async def test_only_a_complete_reply_gets_a_title(conversation, api, status):
    assert await titled(conversation, status=status) == (None, records.title_from(QUESTION))
    assert chat_requests(api) == []


async def test_an_empty_reply_gets_no_title(conversation, api):
    assert await titled(conversation, answer="  ") == (None, records.title_from(QUESTION))


async def test_only_the_first_reply_gets_a_title(conversation, api):
    await database_sync_to_async(first_turn)(conversation)
    second = await database_sync_to_async(first_turn)(conversation, text="And in reverse?")
    assert await titles.schedule(conversation, second) is False
    assert chat_requests(api) == []


async def test_a_reply_after_a_failed_first_one_gets_no_title(conversation, api):
    await database_sync_to_async(first_turn)(conversation, status=Message.Status.ERROR)
    second = await database_sync_to_async(first_turn)(conversation, text="Try again")
    assert await titles.schedule(conversation, second) is False
    assert chat_requests(api) == []


# --- the watchers are told ------------------------------------------------------------------------------------


async def test_a_socket_on_the_conversation_gets_the_new_title(socket, conversation, api):
    api.enqueue(Reply(text="Sorting dicts by key"))
    await titled(conversation)
    frame = await next_frame(socket)
    assert frame == {"type": "conversation", "id": str(conversation.public_id), "title": "Sorting dicts by key"}


async def test_other_processes_watching_are_told_through_the_group(conversation, api):
    layer = get_channel_layer()
    elsewhere = await layer.new_channel()  # stands for another process's hub channel
    await layer.group_add(conversation.group_name, elsewhere)
    api.enqueue(Reply(text="Sorting dicts by key"))
    await titled(conversation)
    message = await asyncio.wait_for(layer.receive(elsewhere), 5)
    assert message["type"] == "conversation.title" and message["key"] == conversation.public_id.hex
    assert '"title":"Sorting dicts by key"' in message["frame"]


# --- the demo model -------------------------------------------------------------------------------------------


async def test_the_demo_model_titles_with_the_first_words(conversation, api):
    # Nothing scripted: the stand-in answers as the demo model does.
    assert await titled(conversation) == (True, "How do I sort a")


async def test_the_built_in_demo_model_titles_too(settings):
    from chat.standin.demo import start as demo_server

    settings.INFERENCE_URL = ""
    demo = await asyncio.to_thread(demo_server)
    demo.app.delay, paced = 0.0, demo.app.delay
    try:
        title = await titles.ask_for_title(titles.Exchange("what is the capital of France?", "Paris.", "x"))
    finally:
        demo.app.delay = paced
    assert title == "What is the capital of"


@pytest.mark.parametrize(
    "request_text, title",
    [
        ("<user>\nwhy, oh why is the sky blue?\n</user>\n<assistant>\nLight.\n</assistant>", "Why oh why is the"),
        ("<user>\n\n</user>\n<assistant>\nA cat.\n</assistant>", "Demo conversation"),
        ("plain words only", "Plain words only"),
    ],
)
def test_the_demo_title_is_the_persons_first_words(request_text, title):
    assert demo_model.title(request_text) == title
