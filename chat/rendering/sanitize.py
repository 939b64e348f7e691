"""The allow-list every rendered fragment passes through last (nh3): only the tags, classes and attributes the
renderer produces, http(s) and mailto URLs, and every link forced to a new tab without a referrer."""

import nh3
from pygments.token import STANDARD_TYPES

ALIGN_CLASSES = {"align-left", "align-center", "align-right"}
PYGMENTS_CLASSES = {name for name in STANDARD_TYPES.values() if name}

_CLEANER = nh3.Cleaner(
    tags={
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr", "br",
        "pre", "code", "em", "strong", "s", "del", "a", "span", "div", "button", "input",
        "table", "thead", "tbody", "tr", "th", "td",
    },
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    tag_attribute_values={
        "button": {"type": {"button"}, "aria-label": {"Copy code"}},
        "input": {"type": {"checkbox"}, "checked": {"checked"}, "disabled": {"disabled"}},
    },
    set_tag_attribute_values={"a": {"target": "_blank"}},
    allowed_classes={
        "div": {"codeblock", "codeblock-bar", "table-wrap"},
        "span": {"codeblock-lang"} | PYGMENTS_CLASSES,
        "pre": {"codehilite"},
        "button": {"copy-code"},
        "ul": {"contains-task-list"},
        "ol": {"contains-task-list"},
        "li": {"task-list-item"},
        "input": {"task-list-item-checkbox"},
        "th": ALIGN_CLASSES,
        "td": ALIGN_CLASSES,
    },
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def sanitize_html(html: str) -> str:
    """The allow-list every rendered fragment passes through last: only the tags, classes and
    attributes this renderer produces, http(s)/mailto URLs, and links forced to a new tab."""
    return _CLEANER.clean(html)
