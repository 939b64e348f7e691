"""CPU cost of rendering a streamed reply: incremental StreamRenderer vs. rendering once vs. naive.

Run from the repository root: .venv/bin/python bench/render.py

Each reply is fed in deltas of ~20 characters (2,000 deltas for 40 KB) with flush() after every
delta and a fake clock advancing 20 ms per delta, so the 80 ms throttle behaves as it does live
(50 deltas/s, ~12 tail updates/s). All figures are CPU time (time.process_time) from this run:
- single: render_markdown() once on the finished text (the floor);
- streaming: every feed/flush plus finish();
- naive: render_markdown() of the whole text so far at every throttled update. That is quadratic,
  so it is measured on SAMPLES evenly spaced updates and scaled to the real number of updates.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chat.rendering import StreamRenderer, render_markdown  # noqa: E402

SIZES_KB = (10, 40, 160)
DELTA_CHARS = 20  # 40 KB / 2,000 deltas
TICK = 0.020  # fake seconds per delta
SAMPLES = 60

WORDS = (
    "the request handler returns a response object while the worker keeps streaming tokens to every "
    "socket that watches this conversation and the database stores partial text once per second"
).split()

CODE = '''def stream_reply(conversation, text):
    """Send the reply to every socket watching the conversation."""
    for seq, delta in enumerate(chunks(text), start=1):
        payload = {"type": "chat.delta", "seq": seq, "text": delta}
        if not broadcast(conversation.group_name, payload):
            logger.warning("no watchers for %s", conversation.public_id)
    return len(text)
'''


def sentence(rng: random.Random) -> str:
    """Prose with inline markup in about half the sentences, as chat replies have."""
    words = rng.sample(WORDS, rng.randint(8, 18))
    i = rng.randrange(len(words))
    if rng.random() < 0.5:
        word = words[i]
        markup = [f"**{word}**", f"`{word}()`", f"*{word}*", f"[{word}](https://example.com/{word})"]
        words[i] = rng.choices(markup, weights=[35, 40, 15, 10])[0]
    if rng.random() < 0.3:
        words[i - 1] += rng.choice([",", " (or so)", ":", " -"])
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))


def bullet_list(rng: random.Random) -> str:
    return "\n".join(f"- {sentence(rng)}" for _ in range(rng.randint(3, 7)))


def table(rng: random.Random) -> str:
    rows = [f"| `{rng.choice(WORDS)}` | {rng.randint(1, 999)} ms | {sentence(rng)[:40]} |" for _ in range(6)]
    return "\n".join(["| name | latency | note |", "|---|--:|---|", *rows])


def code_block(rng: random.Random) -> str:
    return "```python\n" + CODE * rng.randint(1, 4) + "```"


def reply(size: int, seed: int = 7) -> str:
    """A reply of at least `size` characters: mostly prose, with lists, a table and code."""
    rng = random.Random(seed)
    parts = [f"## Answer\n\n{paragraph(rng)}", table(rng)]
    while sum(len(p) + 2 for p in parts) < size:
        parts.append(rng.choices([paragraph, bullet_list, code_block], weights=[5, 2, 1])[0](rng))
        if rng.random() < 0.2:
            parts.append(f"### {' '.join(rng.sample(WORDS, 4)).capitalize()}")
    return "\n\n".join(parts) + "\n"


def deltas(text: str) -> list[str]:
    return [text[i:i + DELTA_CHARS] for i in range(0, len(text), DELTA_CHARS)]


def cpu(fn, repeat: int = 1) -> float:
    """Median CPU seconds of fn() over `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def stream(chunks: list[str]) -> tuple[str, int]:
    """Stream the chunks through a StreamRenderer; return the committed HTML and the update count."""
    now = [0.0]
    renderer = StreamRenderer(clock=lambda: now[0])
    committed, updates = [], 0
    for chunk in chunks:
        now[0] += TICK
        renderer.feed(chunk)
        update = renderer.flush()
        if update:
            updates += 1
            committed.extend(update.committed)
    committed.extend(renderer.finish().committed)
    return "".join(committed), updates


def naive_update_points(chunks: list[str], interval: float = 0.08) -> list[int]:
    """Text lengths at which a throttled full re-render would happen (same clock as stream())."""
    points, length, last = [], 0, None
    for i, chunk in enumerate(chunks, start=1):
        length += len(chunk)
        if last is None or i * TICK - last >= interval - 1e-9:
            points.append(length)
            last = i * TICK
    return points


def naive_cost(text: str, chunks: list[str]) -> float:
    points = naive_update_points(chunks)
    sample = points[:: max(1, len(points) // SAMPLES)]
    spent = cpu(lambda: [render_markdown(text[:n]) for n in sample])
    return spent * len(points) / len(sample) + cpu(lambda: render_markdown(text))


def main() -> None:
    render_markdown(reply(4_000))  # warm up lexers and regex caches
    print(f"{'size':>7} {'deltas':>6} {'updates':>7} {'single ms':>10} {'stream ms':>10} {'stream/single':>13} "
          f"{'naive ms':>9} {'naive/single':>12}")
    for kb in SIZES_KB:
        text = reply(kb * 1000)
        chunks = deltas(text)
        html, updates = stream(chunks)
        assert html == render_markdown(text), "streamed HTML differs from the one-shot render"
        single = cpu(lambda: render_markdown(text), repeat=5)
        streaming = cpu(lambda: stream(chunks), repeat=3)
        naive = naive_cost(text, chunks)
        print(f"{len(text) / 1000:>5.0f}KB {len(chunks):>6} {updates:>7} {single * 1e3:>10.1f} "
              f"{streaming * 1e3:>10.1f} {streaming / single:>12.2f}x {naive * 1e3:>9.0f} {naive / single:>11.0f}x")


if __name__ == "__main__":
    main()
