"""A brand-new learner's first visit, on a phone (390 x 844, Chromium), graded by a real Celery worker.

Sign up, read a lesson, answer its quiz (a wrong pick, then a right answer), solve its first
exercise (a wrong submission, then a right one) and open the progress page. On every page:
nothing scrolls sideways and no console error. What the walk once got wrong on a phone, and
now checks:
- the header scrolled with the page only after taking two or three rows of the screen, and
  hid who is signed in: it now scrolls away, its links fit one row, the name shows;
- after signing up nothing said so: a welcome message does;
- a wrong quiz pick cleared the form without saying what was picked: the feedback lists it;
- Submit sits below the editor while the result tab is above the statement: the answer
  appeared off screen. The result is now brought into view;
- the link to a wrong attempt's own page touched the diagnosis box under it.
Screenshots, light and dark, go to /tmp/learner-walk-*.png.
"""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from grader.models import Exercise, Submission
from lessons.models import Lesson
from quizzes.models import QuizQuestion
from tests.submission_helpers import solution, wrong
from tests.test_browser_submission import VERDICT_TIMEOUT_MS, grading, replace_editor_text
from tests.test_celery_integration import Stack, redis_server

__all__ = ["grading", "redis_server"]  # fixtures used below

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

PHONE = {"width": 390, "height": 844}
SHOTS = Path("/tmp")
NAME = "newbie"
PASSPHRASE = "a-long-enough-passphrase-42"

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IN_VIEW = """(selector) => {
    const box = document.querySelector(selector).getBoundingClientRect();
    return box.top >= 0 && box.top < window.innerHeight - 40;
}"""


def snap(page: Any, name: str) -> None:
    """The window as it is, light then dark (the page stays light)."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(SHOTS / f"learner-walk-{name}-{scheme}.png"))
    page.emulate_media(color_scheme="light")


def fits(page: Any) -> None:
    """No sideways scrolling; the header's links on one row, the learner's name shown."""
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0, page.url
    tops = page.evaluate("[...document.querySelectorAll('.nav-links a')].map((link) => link.offsetTop)")
    assert len(tops) == 4 and len(set(tops)) == 1, tops
    assert page.locator(".site-user strong").inner_text() == NAME
    assert page.locator(".site-user strong").is_visible()


def header_scrolled_away(page: Any) -> bool:
    page.evaluate("window.scrollTo(0, 900)")
    return bool(page.evaluate("document.querySelector('.site-header').getBoundingClientRect().bottom <= 0"))


def test_a_new_learner_signs_up_reads_answers_solves_and_sees_progress_on_a_phone(
    browser: Any, live_server: Any, grading: Stack
) -> None:
    call_command("import_content", stdout=StringIO(), stderr=StringIO())
    grading.worker()
    page = browser.new_context(viewport=PHONE).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Sign up from the home page; the page it lands on says so.
    page.goto(f"{live_server.url}/")
    snap(page, "01-home")
    page.click("text=Sign up")
    page.wait_for_url("**/accounts/signup/")
    page.fill("input[name=username]", NAME)
    page.fill("input[name=password1]", PASSPHRASE)
    page.fill("input[name=password2]", PASSPHRASE)
    snap(page, "02-signup")
    page.click("main button[type=submit]")
    page.wait_for_selector(".message-success")
    assert "Welcome, newbie" in page.inner_text(".message-success")
    assert User.objects.filter(username=NAME).exists()
    fits(page)
    snap(page, "03-welcome")

    # The first lesson; the header scrolls away with it.
    page.click("text=Backpropagation Explained")
    page.wait_for_url("**/lessons/backpropagation/")
    fits(page)
    snap(page, "04-lesson")
    assert header_scrolled_away(page)
    page.wait_for_timeout(300)  # formulas and diagrams rendered as they come into view
    snap(page, "05-lesson-body")

    # Its quiz: a wrong pick is named in the feedback; a right number is marked correct.
    page.goto(f"{live_server.url}/lessons/backpropagation/quiz/")
    fits(page)
    snap(page, "06-quiz")
    card = page.locator("#q-two-paths-sum")
    card.get_by_label("It multiplies the gradients that arrive along the two paths.").check()
    card.get_by_role("button", name="Check answer").click()
    picks = page.locator("#q-two-paths-sum .quiz-last-picks")
    picks.wait_for()
    assert "It multiplies the gradients" in picks.inner_text()
    picks.scroll_into_view_if_needed()
    snap(page, "07-quiz-wrong")
    page.locator("#q-sgd-step-answer").fill("1.05")
    page.locator("#q-sgd-step").get_by_role("button", name="Check answer").click()
    page.locator("#q-sgd-step .quiz-verdict", has_text="Correct").wait_for()
    page.locator("#q-sgd-step .quiz-verdict").scroll_into_view_if_needed()
    snap(page, "08-quiz-right")
    fits(page)

    # The lesson's first exercise, submitted from below the editor: the result comes into view.
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    fits(page)
    snap(page, "09-exercise")
    replace_editor_text(page, wrong("linear-backward", "dw_transposed"))
    page.locator("#submit-button").scroll_into_view_if_needed()
    snap(page, "10-exercise-editor")
    page.click("#submit-button")
    page.wait_for_selector('#pane-result [data-verdict="wrong_answer"]', timeout=VERDICT_TIMEOUT_MS)
    page.wait_for_function(IN_VIEW, arg=".pane-tabs")
    assert page.get_attribute("#tab-result", "aria-selected") == "true"
    fits(page)
    snap(page, "11-wrong")
    gap = page.evaluate(
        "document.querySelector('#pane-result .diagnosis').getBoundingClientRect().top"
        " - document.querySelector('#pane-result .verdict-next').getBoundingClientRect().bottom"
    )
    assert gap >= 8  # the link to the attempt's page does not touch the diagnosis box
    page.locator("#pane-result .diagnosis").scroll_into_view_if_needed()
    snap(page, "12-wrong-diagnosis")

    page.locator("#submit-button").scroll_into_view_if_needed()
    replace_editor_text(page, solution("linear-backward"))
    page.click("#submit-button")
    page.wait_for_selector('#pane-result [data-verdict="accepted"]', timeout=VERDICT_TIMEOUT_MS)
    page.wait_for_function(IN_VIEW, arg=".pane-tabs")
    snap(page, "13-accepted")
    learner = User.objects.get(username=NAME)
    assert list(Submission.objects.filter(user=learner).order_by("attempt").values_list("verdict", flat=True)) == [
        "wrong_answer",
        "accepted",
    ]

    # The progress page: one lesson read, one quiz point, one exercise accepted.
    page.click(".nav-links >> text=Progress")
    page.wait_for_url("**/progress/")
    fits(page)
    text = page.inner_text("main")
    lessons, exercises = Lesson.objects.count(), Exercise.objects.filter(is_active=True).count()
    questions = QuizQuestion.objects.filter(lesson__slug="backpropagation", is_active=True).count()
    assert f"1/{lessons}" in text and f"1/{exercises}" in text and f"1/{questions}" in text
    snap(page, "14-progress")
    page.locator("text=Backward pass of a linear layer").first.scroll_into_view_if_needed()
    snap(page, "15-progress-exercises")
    assert errors == []
