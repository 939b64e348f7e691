"""Log lines name kinds and ids, never text: an exception that quotes model output or a person's words reaches
no log record, not in its message, its arguments, nor its formatted traceback.

Replies come from the stand-in over real HTTP; its malformed event carries a secret the model "wrote".
"""

import logging
import uuid

import pytest
from channels.db import database_sync_to_async

from chat.logs import chain, describe, where
from chat.models import Message
from chat.standin.api import Fault, Reply
from chat.turns import records, stream, titles
from tests.sockets import ask

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "pin-7391-do-not-log"
MALFORMED = '{"choices": [{"delta": {"content": "the pin is ' + SECRET + '"'  # cut short: not JSON


@pytest.fixture
def records_seen(caplog):
    """Every record logged during the test, at every level."""
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_text(caplog, secret=SECRET):
    formatter = logging.Formatter()
    for record in caplog.records:
        parts = [record.getMessage(), repr(record.args), str(record.msg), record.exc_text or "",
                 record.stack_info or ""]
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        assert secret not in "\n".join(parts), f"{record.name}: {record.getMessage()}"
    assert secret not in caplog.text


def logged(caplog, *words):
    return [r.getMessage() for r in caplog.records if all(word in r.getMessage() for word in words)]


async def first_reply(conversation):
    def store():
        reply = records.start_turn_records(conversation, text="What is my pin?", client_id=uuid.uuid4(), model="m",
                                           worker="").reply
        return records.finish_reply(reply.pk, content="I cannot know that.", status=Message.Status.COMPLETE)

    return await database_sync_to_async(store)()


async def test_a_malformed_title_event_logs_its_kind_not_its_text(conversation, api, settings, records_seen):
    settings.CHAT_AUTO_TITLES = True
    api.inject(Fault("malformed", chunks=1, data=MALFORMED))
    assert await titles.schedule(conversation, await first_reply(conversation)) is False
    assert logged(records_seen, "title: model request failed", "error=chat.inference.errors.Unavailable")
    assert_no_text(records_seen)


async def test_an_unexpected_title_error_logs_its_kind_and_frames_not_its_text(
    conversation, api, settings, records_seen, monkeypatch
):
    settings.CHAT_AUTO_TITLES = True
    api.enqueue(Reply(text=f"Your pin {SECRET}"))

    def broken_clean(answer):
        raise ValueError(f"cannot clean {answer!r}")

    monkeypatch.setattr(titles, "clean", broken_clean)
    assert await titles.schedule(conversation, await first_reply(conversation)) is False
    (line,) = logged(records_seen, "title: failed for conversation=", "error=ValueError")
    assert "chat/turns/titles.py:" in line and ":broken_clean" in line  # where it happened is kept
    assert_no_text(records_seen)


async def test_a_malformed_turn_event_logs_no_text(socket, conversation, api, records_seen):
    api.enqueue(Reply(text="Here it comes: " + "x" * 40, chunk_size=4))
    api.inject(Fault("malformed", chunks=3, data=MALFORMED))
    final = (await ask(socket, "What is my pin?"))[-1]["message"]
    assert final["status"] == "error" and SECRET not in final["error"]
    assert logged(records_seen, "status=error")  # the turn's one line was written
    assert_no_text(records_seen)


async def test_an_unexpected_turn_error_logs_its_kind_not_its_text(socket, conversation, api, records_seen, monkeypatch):
    api.enqueue(Reply(text=f"Your pin is {SECRET}.", chunk_size=50))

    async def broken_add_text(self, text):
        raise ValueError(f"cannot render {text!r}")

    monkeypatch.setattr(stream.ReplyStream, "add_text", broken_add_text)
    final = (await ask(socket, "What is my pin?"))[-1]["message"]
    assert final["status"] == "error"
    (line,) = logged(records_seen, "turn failed reply=", "error=ValueError")
    assert ":broken_add_text" in line
    assert_no_text(records_seen)


def test_describe_keeps_the_chain_of_kinds_and_the_frames_only():
    def inner():
        raise KeyError(SECRET)

    try:
        try:
            inner()
        except KeyError as exc:
            raise RuntimeError(f"while reading {SECRET}") from exc
    except RuntimeError as exc:
        caught = exc
    assert chain(caught) == "RuntimeError<-KeyError"
    assert where(caught).startswith("test_log_redaction.py:")  # outside chat/: the file name alone
    assert SECRET not in describe(caught)
    assert describe(Exception()) == "error=Exception where=-"
