"""The backpropagation lesson in headless Chromium: KaTeX math, Mermaid SVG, highlighted code, no console errors.

Screenshots (desktop and phone) go to tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from contentsync.files import ContentReport
from lessons.content import load_lessons
from tests.conftest import SCREENSHOTS

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

RENDER_TIMEOUT_MS = 15_000

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lessons(transactional_db: None) -> None:
    report = ContentReport(root=settings.CONTENT_DIR)
    load_lessons(settings.CONTENT_DIR, report, write=True)
    assert report.errors == []


def open_page(browser, url: str, viewport: dict[str, int]):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    return page, errors, requests


def test_the_backpropagation_lesson_renders_math_diagram_and_code(browser, live_server, lessons: None) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors, requests = open_page(
        browser, f"{live_server.url}/lessons/backpropagation/", {"width": 1280, "height": 900}
    )
    page.locator("pre.mermaid").first.scroll_into_view_if_needed()  # Mermaid loads when a diagram comes near
    page.wait_for_selector(".mermaid svg .node", timeout=RENDER_TIMEOUT_MS)  # the svg is inserted before its nodes
    page.wait_for_selector(".katex", timeout=RENDER_TIMEOUT_MS)
    # The chain-rule formula the seed lost is typeset by KaTeX (MathML + HTML output).
    display = page.locator(".katex-display")
    assert display.count() >= 3
    annotations = " ".join(page.locator(".katex annotation").all_text_contents())
    assert "\\frac{\\partial L}{\\partial w}" in annotations
    # No formula was left as raw TeX or turned into a KaTeX error.
    assert page.locator(".katex-error").count() == 0
    # The diagram is an SVG drawn by Mermaid, with its nodes.
    assert page.locator(".mermaid svg").count() >= 1
    assert page.locator(".mermaid svg .node").count() >= 3
    # The code example is highlighted by Pygments: keywords carry their class and colour.
    keyword = page.locator("pre.highlight .kn, pre.highlight .k").first
    assert keyword.count() == 1
    assert keyword.evaluate("e => getComputedStyle(e).color") != page.locator("pre.highlight").first.evaluate(
        "e => getComputedStyle(e).color"
    )
    page.screenshot(path=str(SCREENSHOTS / "lesson-backpropagation-desktop.png"), full_page=False)
    page.locator(".mermaid").first.screenshot(path=str(SCREENSHOTS / "lesson-backpropagation-diagram.png"))
    page.locator("#mathematical-foundations").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "lesson-backpropagation-math.png"))
    page.locator("pre.highlight").first.screenshot(path=str(SCREENSHOTS / "lesson-backpropagation-code.png"))
    assert errors == []
    # Every asset came from this server: no CDN.
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requests), requests


def test_every_lesson_draws_its_diagram_and_math_on_a_phone(browser, live_server, lessons: None) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    for slug in (
        "backpropagation",
        "attention-mechanisms",
        "cnn-architecture",
        "activation-functions",
        "batch-normalization",
    ):
        page, errors, _ = open_page(browser, f"{live_server.url}/lessons/{slug}/", {"width": 390, "height": 844})
        page.locator("pre.mermaid").first.scroll_into_view_if_needed()
        page.wait_for_selector(".mermaid svg .node", timeout=RENDER_TIMEOUT_MS)  # the svg is inserted before its nodes
        assert page.locator(".katex-error").count() == 0
        # The page does not scroll sideways on a phone (wide formulas and code scroll inside their boxes).
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{slug} overflows by {overflow}px"
        page.screenshot(path=str(SCREENSHOTS / f"lesson-{slug}-phone.png"))
        assert errors == [], (slug, errors)
        page.close()


def test_the_home_page_lists_the_lessons_on_a_phone(browser, live_server, lessons: None) -> None:
    page, errors, _ = open_page(browser, f"{live_server.url}/", {"width": 390, "height": 844})
    assert page.locator(".lesson-card").count() == 5
    page.screenshot(path=str(SCREENSHOTS / "home-phone.png"), full_page=True)
    assert errors == []
