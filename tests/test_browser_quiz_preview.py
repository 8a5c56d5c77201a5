"""The quiz question's preview in Chromium: variants drawn with KaTeX, light and dark; preview without saving.

Screenshots of the preview go to /tmp/qpreview-*.png (desktop, light and dark).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from lessons.models import Lesson
from quizzes.content import parse_question
from quizzes.grading import format_matrix
from quizzes.models import QuizQuestion
from quizzes.parameterized import variant_for
from quizzes.preview import PREVIEW_VARIANTS
from tests.conftest import unavailable
from tests.test_browser_accessibility import AXE, AXE_PATH, BLOCKING, DESKTOP

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp")


@pytest.fixture
def question(transactional_db: None) -> QuizQuestion:
    lesson = Lesson.objects.create(slug="backprop", title="Backprop", body_md="x")
    authored = {
        "key": "dw",
        "type": "parameterized",
        "prompt": "For a linear layer with input and upstream gradient\n\n"
        "$$x = {{x}}, \\quad dout = {{dout}}$$\n\nwhat is $dw = \\partial L / \\partial w$?",
        "generator": "linear_backward_dw",
        "explanation": "$dw = x^\\top dout$: each weight collects its input times the upstream gradient.",
    }
    return QuizQuestion.objects.create(lesson=lesson, key="dw", **parse_question(authored, 0))


def serious_violations(page: Any, live_server: Any, selector: str) -> list[str]:
    """axe-core's serious and critical violations inside `selector` (the admin around it is Django's).

    axe is served on the live server's origin (as in test_browser_accessibility.py), so the CSP applies unchanged.
    """
    page.route(
        f"{live_server.url}{AXE_PATH}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript")
    )
    page.add_script_tag(url=f"{live_server.url}{AXE_PATH}")
    found = page.evaluate(
        """async (selector) => {
            const result = await axe.run(selector, {resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, node: v.nodes[0].target.join(' ')}));
        }""",
        selector,
    )
    return [f"{item['id']} ({item['impact']}): {item['node']}" for item in found if item["impact"] in BLOCKING]


def failed_responses(page: Any) -> list[str]:
    """The URLs answered 400 or more in the page's context (its tabs too), filled as they come.

    The admin has no favicon (the browser asks for /favicon.ico on its own): callers leave it out."""
    failed: list[str] = []
    page.context.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    return failed


def test_the_change_page_draws_the_variants_with_math_light_and_dark(
    logged_in_page: Any, live_server: Any, instructor: User, question: QuizQuestion
) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run scripts/build-assets.sh", required_by="GRADLAB_REQUIRE_BROWSER")
    page, errors = logged_in_page(instructor, DESKTOP)
    failed = failed_responses(page)
    page.goto(live_server.url + reverse("admin:quizzes_quizquestion_change", args=[question.pk]))
    section = page.locator(".quiz-preview-section")
    variants = section.locator(".quiz-preview-variant")
    assert variants.count() == PREVIEW_VARIANTS
    page.wait_for_function(
        "() => document.querySelectorAll('.quiz-preview .math:not(.is-rendered)').length === 0", timeout=15_000
    )
    for index in range(PREVIEW_VARIANTS):
        variant = variants.nth(index)
        seed = int(variant.get_attribute("data-seed") or "")
        # Drawn by KaTeX: matrices as the learner sees them, no TeX source left as text.
        assert variant.locator(".quiz-card .katex .mtable").count() == 2
        assert "\\begin{bmatrix}" not in variant.locator(".quiz-card").inner_text()
        expected = format_matrix(variant_for(question.generator, seed).answer)
        assert variant.locator(".quiz-preview-answer").inner_text() == expected
        assert variant.locator(".quiz-card textarea").is_disabled()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        section.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"qpreview-desktop-{scheme}.png"), full_page=True)
        variants.first.screenshot(path=str(SHOTS / f"qpreview-variant-{scheme}.png"))
        assert serious_violations(page, live_server, ".quiz-preview-section") == [], scheme
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    assert [error for error in errors if not error.startswith("Failed to load resource")] == []


def test_preview_without_saving_opens_the_typed_form_in_a_new_tab(
    logged_in_page: Any, live_server: Any, instructor: User, question: QuizQuestion
) -> None:
    page, errors = logged_in_page(instructor, DESKTOP)
    failed = failed_responses(page)
    page.goto(live_server.url + reverse("admin:quizzes_quizquestion_change", args=[question.pk]))
    prompt = "Upstream gradient $g = {{dout}}$, input $x = {{x}}$: find $dw$."
    page.fill("#id_prompt_md", prompt)
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Preview without saving").click()
    preview = opened.value
    preview.wait_for_load_state()
    assert "Not saved" in preview.locator(".quiz-preview-unsaved").inner_text()
    assert preview.locator(".quiz-preview-variant").count() == PREVIEW_VARIANTS
    preview.wait_for_function("() => document.querySelectorAll('.quiz-card .katex').length >= 3", timeout=15_000)
    assert "Upstream gradient" in preview.locator(".quiz-preview").inner_text()
    preview.screenshot(path=str(SHOTS / "qpreview-unsaved-light.png"), full_page=True)
    # The form is still open as typed, and nothing was saved.
    assert page.input_value("#id_prompt_md") == prompt
    question.refresh_from_db()
    assert "Upstream" not in question.prompt_md
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    assert [error for error in errors if not error.startswith("Failed to load resource")] == []
