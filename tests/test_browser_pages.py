"""Lesson and home pages in Chromium: page weight, what loads where, readable diagrams, wide formulas.

- the lesson page weighs under 1 MB on first load (bytes of every response, uncompressed,
  as the test server sends them); Mermaid arrives only when a diagram comes near;
- the home page loads neither KaTeX nor Mermaid (it has no math and no diagram);
- every lesson diagram is drawn top to bottom with text at least 11 px high, on a phone and
  on a desktop;
- a display formula wider than its column scrolls inside its box, is reachable by keyboard
  and shows a visible cue.
Screenshots go to /tmp/gradlab-screens/ (look at them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/gradlab-screens")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000
ONE_MB = 1_000_000
MIN_DIAGRAM_TEXT_PX = 11


@pytest.fixture
def lessons(transactional_db: None) -> None:
    from io import StringIO

    call_command("import_content", stdout=StringIO(), stderr=StringIO())


class Weighed:
    """Every response a page received, with its body size."""

    def __init__(self, page: Any) -> None:
        self.sizes: dict[str, int] = {}
        page.on("requestfinished", self._finished)

    def _finished(self, request: Any) -> None:
        response = request.response()
        if response is None:
            return
        try:
            size = len(response.body())
        except Exception:  # a redirect has no body
            size = 0
        self.sizes[request.url] = size

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    def urls(self, fragment: str) -> list[str]:
        return [url for url in self.sizes if fragment in url]


def open_page(browser: Any, url: str, viewport: dict[str, int], scheme: str = "light") -> tuple[Any, Weighed, list]:
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    weighed = Weighed(page)
    page.goto(url, wait_until="networkidle")
    return page, weighed, errors


def test_the_lesson_page_weighs_under_one_megabyte_and_mermaid_waits_for_the_diagram(
    browser: Any, live_server: Any, lessons: None
) -> None:
    SHOTS.mkdir(exist_ok=True)
    page, weighed, errors = open_page(browser, f"{live_server.url}/lessons/backpropagation/", DESKTOP)
    page.wait_for_selector(".katex", timeout=WAIT_MS)
    page.wait_for_load_state("networkidle")
    first_load = weighed.total
    print(f"\nlesson first load: {first_load} bytes in {len(weighed.sizes)} responses")
    assert first_load < ONE_MB, sorted(weighed.sizes.items(), key=lambda item: -item[1])[:8]
    assert weighed.urls("katex.min.js") and not weighed.urls("mermaid")
    assert not weighed.urls("mermaid.min.js")  # the 3.5 MB one-file build is never served to a page

    page.locator("pre.mermaid").first.scroll_into_view_if_needed()
    page.wait_for_selector(".mermaid svg .node", timeout=WAIT_MS)
    page.wait_for_load_state("networkidle")
    with_diagram = weighed.total
    print(f"lesson after the diagram is drawn: {with_diagram} bytes")
    assert weighed.urls("mermaid.esm.min.mjs") and not weighed.urls("mermaid.min.js")
    assert with_diagram - first_load < 1_200_000  # the flowchart's chunks only
    assert errors == []


def test_the_home_page_loads_no_katex_and_no_mermaid(browser: Any, live_server: Any, lessons: None) -> None:
    page, weighed, errors = open_page(browser, f"{live_server.url}/", DESKTOP)
    assert page.locator(".lesson-card").count() >= 5
    assert weighed.urls("katex") == [] and weighed.urls("mermaid") == []
    print(f"\nhome page: {weighed.total} bytes")
    assert errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_lesson_diagram_is_drawn_top_to_bottom_with_readable_text(
    browser: Any, live_server: Any, lessons: None, viewport: dict[str, int]
) -> None:
    SHOTS.mkdir(exist_ok=True)
    for slug in ("backpropagation", "cnn-architecture", "attention-mechanisms"):
        page, _, errors = open_page(browser, f"{live_server.url}/lessons/{slug}/", viewport)
        diagrams = page.locator("pre.mermaid")
        for index in range(diagrams.count()):
            diagram = diagrams.nth(index)
            diagram.scroll_into_view_if_needed()
            page.wait_for_selector(f"pre.mermaid >> nth={index} >> svg .node", timeout=WAIT_MS)
            box = diagram.locator("svg").bounding_box()
            assert box is not None
            if box["width"] > diagram.evaluate("n => n.clientWidth"):
                # Too wide to shrink readably: it scrolls in its box, by keyboard too, with a cue.
                assert "is-overflowing" in (diagram.get_attribute("class") or "")
                assert diagram.get_attribute("tabindex") == "0"
                assert "scroll sideways" in diagram.evaluate("n => getComputedStyle(n, '::after').content")
            assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
            # Text height as drawn: the smallest label's box on screen.
            heights = diagram.locator("svg .node .nodeLabel").evaluate_all(
                "nodes => nodes.map(n => n.getBoundingClientRect().height).filter(h => h > 0)"
            )
            assert heights, slug
            assert min(heights) >= MIN_DIAGRAM_TEXT_PX, (slug, index, min(heights))
            diagram.screenshot(path=str(SHOTS / f"diagram-{slug}-{index}-{viewport['width']}.png"))
        assert errors == [], errors
        page.context.close()


def test_a_wide_formula_scrolls_in_its_box_with_a_visible_cue(browser: Any, live_server: Any, lessons: None) -> None:
    SHOTS.mkdir(exist_ok=True)
    page, _, errors = open_page(browser, f"{live_server.url}/lessons/attention-mechanisms/", PHONE)
    page.wait_for_selector(".katex", timeout=WAIT_MS)
    wide = page.locator(".math.is-overflowing")
    assert wide.count() >= 1
    formula = wide.first
    assert formula.evaluate("n => n.scrollWidth > n.clientWidth")
    assert formula.get_attribute("tabindex") == "0"
    cue = formula.evaluate("n => getComputedStyle(n, '::after').content")
    assert "scroll sideways" in cue
    # The page itself does not scroll sideways: only the formula does.
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
    formula.focus()
    assert formula.evaluate("n => n === document.activeElement")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    # Keyboard scrolling may be animated: wait for the box to move rather than read it at once.
    formula.element_handle().wait_for_element_state("stable")
    page.wait_for_function("n => n.scrollLeft > 0", arg=formula.element_handle(), timeout=WAIT_MS)
    formula.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "wide-formula-phone.png"))
    assert errors == []
