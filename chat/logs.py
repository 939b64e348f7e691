"""Exceptions in log lines: what kind they are and where they happened, never what they say.

An exception's message can quote what it was handed: a malformed model event (``Unavailable`` carries 200
characters of it), a user's text, a row's values in a database error. Log lines carry ids, timings and kinds, so
the app's loggers never pass ``exc_info`` (a formatted traceback ends with the message) nor ``%s`` of an
exception: they log ``describe(exc)``, which keeps what a traceback is good for (the exception types of the
chain and the frames they went through) and drops every message. Imports nothing of the app.
"""

import traceback

FRAMES = 12  # the innermost frames kept: enough to find the line, short enough for one log line


def kind(exc):
    """The exception's type, module-qualified unless it is a builtin: ``chat.inference.errors.Unavailable``."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def chain(exc):
    """The types of ``exc`` and of the exceptions it was raised from or while handling, outermost first."""
    kinds, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        kinds.append(kind(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "<-".join(kinds)


def where(exc):
    """The frames ``exc`` went through, ``file:line:function``, innermost last; only file names (from the
    package onwards) and line numbers, which come from the code, never from data."""
    frames = traceback.extract_tb(exc.__traceback__)[-FRAMES:]
    return ">".join(f"{_short(frame.filename)}:{frame.lineno}:{frame.name}" for frame in frames) or "-"


def describe(exc):
    """``error=<chain> where=<frames>``: the part of a log line that stands for ``exc_info``."""
    return f"error={chain(exc)} where={where(exc)}"


def _short(path):
    # site-packages/httpx/_client.py -> httpx/_client.py; /app/chat/turns/turn.py -> chat/turns/turn.py
    for marker in ("/site-packages/", "/chat/", "/chatsite/"):
        head, found, tail = path.rpartition(marker)
        if found:
            return tail if marker == "/site-packages/" else marker.strip("/") + "/" + tail
    return path.rsplit("/", 1)[-1]
