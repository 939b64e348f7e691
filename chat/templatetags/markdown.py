from django import template
from django.utils.safestring import mark_safe

from chat.rendering.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Markdown → HTML through the one renderer (its output is sanitised by nh3, so it is safe to mark)."""
    return mark_safe(render_markdown(text or ""))
