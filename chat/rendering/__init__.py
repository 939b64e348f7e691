"""Markdown → safe HTML on the server: whole messages (markdown.py) and replies while they stream (stream.py)."""

from chat.rendering.markdown import render_markdown, render_user_text  # noqa: F401
from chat.rendering.sanitize import sanitize_html  # noqa: F401
from chat.rendering.stream import RenderUpdate, StreamRenderer  # noqa: F401
