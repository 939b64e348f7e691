"""What the rendering tests expect the renderer to write, and a clock that moves only when a test moves it."""

COPY_BAR = (
    '<div class="codeblock-bar"><span class="codeblock-lang">{}</span>'
    '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>'
)
REL = 'target="_blank" rel="noopener noreferrer nofollow"'


def code_block(lang: str, body: str) -> str:
    return f'<div class="codeblock">{COPY_BAR.format(lang)}<pre class="codehilite"><code>{body}</code></pre></div>\n'


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
