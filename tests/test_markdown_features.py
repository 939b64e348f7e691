"""Markdown rendering: what each feature becomes, which links and images survive, and what the sanitiser keeps."""

import pytest

from chat.rendering import render_markdown, render_user_text, sanitize_html
from tests.render_helpers import REL, code_block


# --- one test per Markdown feature ------------------------------------------------------------


def test_heading():
    assert render_markdown("# Title\n\n### Small") == "<h1>Title</h1>\n<h3>Small</h3>\n"


def test_emphasis():
    assert render_markdown("*em* and **strong**") == "<p><em>em</em> and <strong>strong</strong></p>\n"


def test_lists():
    assert render_markdown("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
    assert render_markdown("3. c\n4. d") == '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>\n'


def test_task_list():
    assert render_markdown("- [ ] todo\n- [x] done") == (
        '<ul class="contains-task-list">\n'
        '<li class="task-list-item"><input class="task-list-item-checkbox" disabled="disabled" '
        'type="checkbox"> todo</li>\n'
        '<li class="task-list-item"><input class="task-list-item-checkbox" checked="checked" disabled="disabled" '
        'type="checkbox"> done</li>\n'
        "</ul>\n"
    )


def test_table_is_wrapped_to_scroll_and_aligned_with_classes():
    html = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |")
    assert html.startswith('<div class="table-wrap"><table>\n<thead>\n<tr>\n<th class="align-left">a</th>')
    assert '<td class="align-right">2</td>' in html
    assert html.endswith("</table></div>\n")
    assert "style" not in html


def test_strikethrough():
    assert render_markdown("~~gone~~") == "<p><s>gone</s></p>\n"


def test_bare_url_is_linkified():
    assert render_markdown("see https://example.com/a?b=c.") == (
        f'<p>see <a href="https://example.com/a?b=c" {REL}>https://example.com/a?b=c</a>.</p>\n'
    )


def test_file_names_are_not_mistaken_for_domains():
    assert render_markdown("edit setup.py and README.md") == "<p>edit setup.py and README.md</p>\n"


def test_bare_email_becomes_mailto_link():
    assert render_markdown("mail me@example.com") == (
        f'<p>mail <a href="mailto:me@example.com" {REL}>me@example.com</a></p>\n'
    )


def test_code_fence_is_highlighted_with_its_language():
    html = render_markdown("```python\ndef f(x):\n    return x\n```")
    assert html == code_block(
        "python",
        '<span class="k">def</span><span class="w"> </span><span class="nf">f</span><span class="p">(</span>'
        '<span class="n">x</span><span class="p">):</span>\n'
        '    <span class="k">return</span> <span class="n">x</span>\n',
    )


def test_unknown_language_is_escaped_not_guessed():
    assert render_markdown("```nosuchlang\ndef f(): <b>\n```") == code_block("nosuchlang", "def f(): &lt;b&gt;\n")


def test_fence_without_language_is_escaped_not_guessed():
    assert render_markdown("```\nimport os\n```") == code_block("", "import os\n")


def test_indented_code_gets_the_same_wrapper():
    assert render_markdown("    x = <y>") == code_block("", "x = &lt;y&gt;\n")


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>hi</b> <script>alert(1)</script>") == (
        "<p>&lt;b&gt;hi&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_image_is_rendered_as_a_link_to_it():
    assert render_markdown("![a cat](https://example.com/cat.png)") == (
        f'<p><a href="https://example.com/cat.png" {REL}>a cat</a></p>\n'
    )


def test_image_without_web_url_is_only_its_alt_text():
    assert render_markdown("![a cat](data:image/png;base64,AAAA)") == "<p>a cat</p>\n"
    assert render_markdown("![a cat](/cat.png)") == "<p>a cat</p>\n"


def test_image_inside_link_does_not_nest_links():
    assert render_markdown("[![badge](https://img.example/b.svg)](https://example.com)") == (
        f'<p><a href="https://example.com" {REL}>badge</a></p>\n'
    )


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "vbscript:msgbox(1)"])
def test_dangerous_link_schemes_never_become_links(url):
    html = render_markdown(f"[x]({url})")
    assert "<a" not in html
    assert html == f"<p>[x]({url})</p>\n"


@pytest.mark.parametrize("url", ["ftp://example.com/f", "/relative/path", "#anchor"])
def test_other_link_schemes_keep_only_their_text(url):
    assert render_markdown(f"[x]({url})") == "<p>x</p>\n"


def test_links_open_in_a_new_tab_without_referrer():
    assert render_markdown('[docs](https://example.com "The docs")') == (
        f'<p><a href="https://example.com" title="The docs" {REL}>docs</a></p>\n'
    )


def test_mailto_link_is_kept():
    assert render_markdown("[write](mailto:a@example.com)") == (
        f'<p><a href="mailto:a@example.com" {REL}>write</a></p>\n'
    )


def test_user_text_renders_like_model_text():
    text = "Why does `x` fail?\n\n```python\nx = 1\n```"
    assert render_user_text(text) == render_markdown(text)


def test_lone_surrogates_are_replaced_not_fatal():
    assert render_markdown("a\ud83db") == "<p>a\ufffdb</p>\n"


def test_sanitizer_keeps_the_renderers_markup():
    html = render_markdown("```python\nx = 1\n```\n\n- [x] y\n\n| a |\n|:-:|\n| b |")
    assert sanitize_html(html) == html
    assert '<span class="n">x</span>' in html


def test_sanitizer_drops_everything_else():
    dirty = (
        '<div class="codeblock evil" style="color:red" onclick="x()"><img src="x.png">'
        '<span class="k nope" data-x="1">t</span><iframe src="https://example.com"></iframe>'
        '<a href="javascript:alert(1)">j</a><a href="/local">l</a>'
        '<input type="text" value="v"><button type="submit" aria-label="Delete">b</button>'
        "<script>alert(1)</script><style>p{}</style><!-- c --></div>"
    )
    assert sanitize_html(dirty) == (
        f'<div class="codeblock"><span class="k">t</span><a {REL}>j</a><a {REL}>l</a>'
        "<input><button>b</button></div>"
    )
