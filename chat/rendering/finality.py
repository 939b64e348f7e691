"""When a block of a streaming reply is final: no text appended later can change how it renders.

The streaming renderer commits such blocks once; ``_is_final`` states the rules (from how markdown-it decides a
block's extent) and the helpers here move the offsets and link definitions that settled text carries.
"""

from markdown_it.token import Token


def count_final(blocks: list[list[Token]], lines: list[str]) -> int:
    """How many leading blocks no future text can change."""
    count = 0
    while count < len(blocks) and _is_final(blocks, count, lines):
        count += 1
    return count


def _is_final(blocks: list[list[Token]], index: int, lines: list[str]) -> bool:
    """Whether appending text can no longer change blocks[index] (its preceding blocks being final).

    `lines[-1]` is the line still being written (empty when the text ends with a newline); every
    other line is complete. markdown-it decides a block's extent from its own lines plus at most
    one line of lookahead (a table header needs the delimiter row below it), so a block is final:
    - when a later top-level block starts on a complete line that is followed by a complete line
      or by nothing yet (once another block has begun, CommonMark never reopens a closed one); or
    - when it is a kind that a blank line ends (paragraph, heading, rule, table, blockquote) and the
      line after it is a complete blank line; or
    - when it is a fenced code block whose closing fence is a complete line.
    Lists and indented code are not in the second group: a blank line does not end them.
    This is about structure only: inline text that looked up a link reference ("[x]", "[x][y]")
    can still change if a definition arrives below, which is why such blocks are held.
    """
    block = blocks[index]
    complete = len(lines) - 1
    if index + 1 < len(blocks):
        start = blocks[index + 1][0].map[0]
        if start + 1 < complete or (start + 1 == complete and lines[-1] == ""):
            return True
    first = block[0]
    end = first.map[1]
    if first.type in _ENDED_BY_BLANK_LINE and end < complete and not lines[end].strip(" \t"):
        return True
    closing = end - 1  # only a fence of two lines or more can have a closing line
    if first.type != "fence" or not first.map[0] < closing < complete:
        return False
    return closes_fence(lines[closing], first.markup)


_ENDED_BY_BLANK_LINE = {"paragraph_open", "heading_open", "hr", "table_open", "blockquote_open", "fence"}


def closes_fence(line: str, markup: str) -> bool:
    stripped = line.lstrip(" ")
    run = len(stripped) - len(stripped.lstrip(markup[0]))
    return len(line) - len(stripped) <= 3 and run >= len(markup) and not stripped[run:].strip(" \t")


def count_without_references(blocks: list[list[Token]]) -> int:
    count = 0
    while count < len(blocks) and not any(token.meta.get("uses_references") for token in blocks[count]):
        count += 1
    return count


def move_definitions(definitions: dict[str, dict], end_line: int, into: dict[str, dict]) -> None:
    # Definitions in settled lines must still apply when only the text after them is parsed again.
    for label, ref in list(definitions.items()):
        if ref["map"][1] <= end_line:
            into[label] = definitions.pop(label)


def line_offsets(lines: list[str]) -> list[int]:
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    return offsets
