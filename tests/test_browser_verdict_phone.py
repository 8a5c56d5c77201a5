"""The verdict's checks table on a phone (390 x 844, Chromium), graded by a real Celery worker through Redis.

A learner opens a hint, submits a wrong multi-head attention backward (five gradients, long case
labels), reads the checks in the result panel beside the editor and on the submission's own page:
the page never scrolls sideways, and every cell of every row lies inside the table's section,
unclipped and overlapping no other cell (the section stacks each check where it is narrow).
At desktop width the same section is a table with its column headers. Screenshots, phone light
and dark, go to /tmp/learner-verdict-*.png.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from grader.models import HintReveal, Submission
from tests.submission_helpers import exercise_from_folder, wrong
from tests.test_browser_submission import VERDICT_TIMEOUT_MS, grading, replace_editor_text
from tests.test_celery_integration import Stack, redis_server

__all__ = ["grading", "redis_server"]  # fixtures used below

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SLUG = "multihead-attention-backward"
SHOTS = Path("/tmp")

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Every non-empty cell of the checks tables under `root`: outside its section (or the window),
# wider than its box (clipped), smaller than 12 px, or overlapping another cell of its row.
UNREADABLE_CELLS = """
(root) => {
    const problems = [];
    const width = window.innerWidth;
    for (const section of document.querySelectorAll(root + ' .checks')) {
        const box = section.getBoundingClientRect();
        if (section.scrollWidth > section.clientWidth + 1) problems.push('the section scrolls sideways');
        for (const row of section.querySelectorAll('tbody tr')) {
            const cells = [...row.children].filter((cell) => cell.textContent.trim());
            const rects = cells.map((cell) => cell.getBoundingClientRect());
            cells.forEach((cell, i) => {
                const r = rects[i], text = cell.textContent.trim().slice(0, 40);
                if (r.width < 1 || r.height < 1) problems.push('hidden: ' + text);
                if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.right > width) {
                    problems.push('outside: ' + text);
                }
                if (cell.scrollWidth > cell.clientWidth + 1) problems.push('clipped: ' + text);
                if (parseFloat(getComputedStyle(cell).fontSize) < 12) problems.push('tiny: ' + text);
                rects.slice(i + 1).forEach((other, j) => {
                    const x = Math.min(r.right, other.right) - Math.max(r.left, other.left);
                    const y = Math.min(r.bottom, other.bottom) - Math.max(r.top, other.top);
                    if (x > 1 && y > 1) problems.push('overlap: ' + text + ' / ' + cells[i + 1 + j].textContent.trim());
                });
            });
        }
    }
    return problems;
}
"""


def sideways_scroll(page: Any) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth"))


SCROLL_TO = """(selector) => {
    const header = document.querySelector('.site-header');
    const covered = getComputedStyle(header).position === 'sticky' ? header.offsetHeight : 0;
    window.scrollTo(0, document.querySelector(selector).getBoundingClientRect().top + window.scrollY - covered);
}"""


def shot(page: Any, selector: str, name: str) -> None:
    """A screenshot of the window with `selector` at its top (below the header where it stays on screen)."""
    page.evaluate(SCROLL_TO, selector)
    page.screenshot(path=str(SHOTS / f"learner-verdict-{name}.png"))


def test_the_checks_of_a_graded_wrong_answer_read_on_a_phone_without_sideways_scrolling(
    logged_in_page: Any, live_server: Any, grading: Stack, learner: User
) -> None:
    exercise = exercise_from_folder(SLUG)
    grading.worker()
    page, errors = logged_in_page(learner, PHONE)

    page.goto(f"{live_server.url}/exercises/{SLUG}/")
    page.wait_for_selector(".cm-editor")
    page.click("text=Show hint 1")
    page.wait_for_selector('.hint.is-revealed[data-level="1"]')
    assert HintReveal.objects.filter(user=learner, exercise=exercise).count() == 1
    replace_editor_text(page, wrong(SLUG, "scale_missing"))
    page.click("#submit-button")
    page.wait_for_selector('#pane-result [data-verdict="wrong_answer"]', timeout=VERDICT_TIMEOUT_MS)
    submission = Submission.objects.get(user=learner)
    assert submission.status == "graded" and submission.verdict == "wrong_answer"
    rows = page.locator("#pane-result .checks-table tbody tr").count()
    assert rows >= 10  # a row per compared gradient, and the checks' messages
    assert sideways_scroll(page) <= 0
    assert page.evaluate(UNREADABLE_CELLS, "#pane-result") == []
    shot(page, "#pane-result .checks", "workspace-light")

    page.click("text=Open this attempt on its own page")
    page.wait_for_url(f"**/submissions/{submission.pk}/")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.reload()
        page.wait_for_selector(".checks-table")
        assert page.locator(".checks-table tbody tr").count() == rows
        assert sideways_scroll(page) <= 0, scheme
        assert page.evaluate(UNREADABLE_CELLS, "#submission-live") == [], scheme
        # The column names are read above the first array of each check (the table's head is visually hidden).
        assert page.evaluate("document.querySelector('.checks-table thead').getBoundingClientRect().height") <= 1
        first_error = page.locator(".checks-table tr.is-first td.num").first
        assert page.evaluate("(cell) => getComputedStyle(cell, '::before').content", first_error.element_handle()) == (
            '"Relative error"'
        )
        shot(page, ".checks", f"submission-{scheme}")
        # The hint opened before submitting is listed for the learner, marked as before this attempt.
        hints = page.locator("#hint-reveals")
        assert hints.is_visible()
        assert "Hint 1: The idea" in hints.inner_text() and "before this attempt" in hints.inner_text()
        shot(page, "#hint-reveals", f"hints-{scheme}")

    # On a desktop the same section is a table with its column headers, and fits its section.
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(DESKTOP)
    page.reload()
    page.wait_for_selector(".checks-table")
    assert page.locator(".checks-table thead").is_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('.checks-table')).display") == "table"
    assert page.evaluate(UNREADABLE_CELLS, "#submission-live") == []
    shot(page, ".checks", "desktop-light")
    assert errors == []
    page.context.close()
