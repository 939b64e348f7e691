"""What the offline demo model says: its canned words, apart from the API stand-in that serves them.

Plain text functions with no imports from the app, so the stand-in (chat/standin/replies.py), which must not
load Django models, can use them.
"""

import re

DEMO_TITLE_WORDS = 5

DEMO_TEXT = """\
**This reply comes from the offline demo model** built into this app. It needs no account, no key and no \
network, and it does not really understand what you write: set `INFERENCE_URL` and `INFERENCE_KEY` to talk \
to Claude on Heroku.

You asked:

{quote}

{images}

Things to try:

- Attach a PNG, JPEG, GIF or WebP image: its format and size are read back here.
- Reload the page while a reply streams: it carries on where it was.
- Press stop halfway, or open this conversation in a second tab.

```python
def greet(name: str) -> str:
    return f"Hello, {{name}}!"
```
"""


def greeting(question: str, images: str) -> str:
    """The demo's answer to a question: what it is, the question quoted, ``images`` described, things to try."""
    return DEMO_TEXT.format(quote=quote(question), images=images)


def reasoning(question: str) -> str:
    return f"The question is {question[:80]!r}. As the demo model I say what I am and suggest things to try."


def title(request_text: str) -> str:
    """A title for a title request (chat/turns/title_prompt.py): the first words of the person's message."""
    found = re.search(r"<user>(.*?)</user>", request_text, re.S)
    words = re.findall(r"[\w'’-]+", found.group(1) if found else request_text)[:DEMO_TITLE_WORDS]
    if not words:
        return "Demo conversation"
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def tool_result(name: str, result: str) -> str:
    return (f"The `{name}` tool returned:\n\n{quote(result)}\n\n"
            "_This is the offline demo model: it quotes tool results instead of reasoning about them._")


def quote(text: str, limit: int = 200) -> str:
    """``text`` as a Markdown block quote, cut after ``limit`` characters."""
    text = text if len(text) <= limit else text[:limit].rstrip() + "…"
    lines = text.splitlines() or ["(no text)"]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)
