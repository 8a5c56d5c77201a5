"""The site's Markdown renderer: math, code, diagrams, heading ids, and what sanitizing removes."""

from __future__ import annotations

from pathlib import Path

from gradlab.markdown import headings_of, pygments_css, render_markdown, sanitize_html

ROOT = Path(__file__).resolve().parent.parent


def test_inline_math_becomes_a_span_with_the_tex_escaped() -> None:
    html = render_markdown("The loss $L < \\frac{1}{2}$ falls.")
    assert '<span class="math" data-display="false">L &lt; \\frac{1}{2}</span>' in html
    assert "$" not in html


def test_display_math_becomes_a_block_and_the_check_comment_disappears() -> None:
    html = render_markdown(
        "Before.\n\n$$\n\\frac{\\partial L}{\\partial w} = x\n$$\n<!-- check: chain-rule -->\n\nAfter."
    )
    assert '<div class="math" data-display="true">\\frac{\\partial L}{\\partial w} = x</div>' in html
    assert "check" not in html
    assert "<!--" not in html


def test_python_code_is_highlighted_with_pygments_classes() -> None:
    html = render_markdown("```python\ndef grad(x):\n    return 2 * x\n```\n")
    assert '<pre class="highlight"><code class="language-python">' in html
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">grad</span>' in html
    assert '<span class="mi">2</span>' in html


def test_code_in_an_unknown_language_is_shown_escaped_without_highlighting() -> None:
    html = render_markdown("```nosuchlanguage\n<b>x</b>\n```\n")
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>" not in html


def test_a_mermaid_fence_becomes_a_pre_with_the_source_escaped() -> None:
    html = render_markdown('```mermaid\ngraph LR\n  A["x < y"] --> B\n```\n')
    assert '<pre class="mermaid">graph LR\n  A["x &lt; y"] --&gt; B\n</pre>' in html


def test_headings_get_unique_ids_and_a_table_of_contents() -> None:
    html = render_markdown("## Code example\n\ntext\n\n### The $x$ term\n\n## Code example\n")
    assert '<h2 id="code-example">' in html
    assert '<h2 id="code-example-2">' in html
    assert [(heading.level, heading.id, heading.text) for heading in headings_of(html)] == [
        (2, "code-example", "Code example"),
        (3, "the-x-term", "The x term"),
        (2, "code-example-2", "Code example"),
    ]


def test_tables_render_with_their_alignment() -> None:
    html = render_markdown("| a | b |\n|:-:|--:|\n| 1 | 2 |\n")
    assert '<th style="text-align:center">a</th>' in html
    assert '<td style="text-align:right">2</td>' in html


def test_scripts_event_handlers_javascript_urls_and_frames_are_neutralized() -> None:
    hostile = (
        "<script>alert('md')</script>\n\n"
        '<img src="x.png" onerror="alert(1)">\n\n'
        '<a href="javascript:alert(2)">raw link</a> and [md link](javascript:alert(3))\n\n'
        '<iframe src="https://example.com/"></iframe>\n\n'
        '<div class="site-nav" style="position:fixed" onclick="alert(4)">boxed</div>\n\n'
        "Math $a^2$ stays.\n\n```python\nx = 1\n```\n\n```mermaid\ngraph LR\n  A --> B\n```\n"
    )
    html = render_markdown(hostile)
    # markdown-it leaves a link with a javascript: target as plain text; nh3 strips the raw one's href.
    for forbidden in (
        "<script",
        "alert('md')",
        "onerror",
        'href="javascript',
        "<iframe",
        "onclick",
        "site-nav",
        "position",
    ):
        assert forbidden not in html, forbidden
    assert '<img src="x.png">' in html
    assert "raw link" in html and "md link" in html
    assert '<span class="math" data-display="false">a^2</span>' in html
    assert '<span class="n">x</span>' in html
    assert '<pre class="mermaid">' in html


def test_sanitizing_drops_unknown_classes_but_keeps_the_renderers_own() -> None:
    cleaned = sanitize_html('<span class="math evil" data-display="maybe">x</span><pre class="mermaid btn">g</pre>')
    assert cleaned == '<span class="math">x</span><pre class="mermaid">g</pre>'


def test_links_to_other_sites_get_noopener() -> None:
    html = render_markdown("[paper](https://arxiv.org/abs/1502.05767)")
    assert 'href="https://arxiv.org/abs/1502.05767"' in html
    assert 'rel="noopener noreferrer"' in html


def test_the_committed_code_stylesheet_is_the_generated_one() -> None:
    css = pygments_css()
    assert "@media (prefers-color-scheme: dark)" in css
    assert ".highlight .k " in css
    assert (ROOT / "static" / "css" / "pygments.css").read_text() == css, (
        "run: .venv/bin/python -m gradlab.markdown pygments-css static/css/pygments.css"
    )
