"""A learner answers the backpropagation quiz in headless Chromium (Debian's) against a live server.

One right answer, one wrong, one bad input (refused in place, no attempt), one
parameterized question; feedback appears in place (no page load) and the score
updates. Screenshots go to tests/screenshots/ (git-ignored), desktop and phone.
"""

from __future__ import annotations

import itertools
import os

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from contentsync.files import ContentReport
from lessons.models import Lesson
from quizzes.content import load_quizzes
from quizzes.grading import format_matrix
from quizzes.models import QuizAttempt, QuizQuestion
from quizzes.services import question_variant
from tests.conftest import SCREENSHOTS

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Playwright waits at most this long for feedback to appear (milliseconds).
FEEDBACK_TIMEOUT_MS = 10_000

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def backprop_quiz(db: None) -> Lesson:
    for slug in (
        "backpropagation",
        "attention-mechanisms",
        "cnn-architecture",
        "activation-functions",
        "batch-normalization",
    ):
        Lesson.objects.create(slug=slug, title=slug.replace("-", " ").capitalize(), question="?")
    report = ContentReport(root=settings.CONTENT_DIR)
    load_quizzes(settings.CONTENT_DIR, report, write=True)
    assert report.errors == []
    return Lesson.objects.get(slug="backpropagation")


def test_a_learner_answers_the_quiz_in_chromium(
    logged_in_page, live_server, learner: User, backprop_quiz: Lesson
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors = logged_in_page(learner, DESKTOP, refused_posts_expected=True)
    page.goto(f"{live_server.url}/lessons/backpropagation/quiz/")
    assert page.locator(".quiz-card").count() == 11
    # A marker that survives only if no page load happens: feedback must arrive in place.
    page.evaluate("window.quizPageMarker = 'still here'")

    # 1. Right: single choice.
    card = page.locator("#q-two-paths-sum")
    card.get_by_label("It adds the gradients that arrive along the two paths.").check()
    card.get_by_role("button", name="Check answer").click()
    page.locator("#q-two-paths-sum .quiz-verdict", has_text="Correct").wait_for(timeout=FEEDBACK_TIMEOUT_MS)
    assert "accumulate" in page.locator("#q-two-paths-sum .quiz-explanation").inner_text()

    # 2. Wrong, then right: numeric. The answer stays hidden while attempts are left; the second
    #    attempt earns half the point, and then the answer and the explanation are shown.
    page.locator("#q-sgd-step-answer").fill("0.55")
    page.locator("#q-sgd-step").get_by_role("button", name="Check answer").click()
    page.locator("#q-sgd-step .quiz-verdict", has_text="Not quite").wait_for(timeout=FEEDBACK_TIMEOUT_MS)
    retry = page.locator("#q-sgd-step .quiz-retry-note").inner_text()
    assert "2 attempts left" in retry and "50%" in retry
    assert page.locator("#q-sgd-step .quiz-answers").count() == 0
    assert page.locator("#q-sgd-step .quiz-explanation").count() == 0
    page.locator("#q-sgd-step").screenshot(path=str(SCREENSHOTS / "quiz-desktop-wrong.png"))
    page.locator("#q-sgd-step-answer").fill("1.05")
    page.locator("#q-sgd-step").get_by_role("button", name="Check answer").click()
    page.locator("#q-sgd-step .quiz-verdict", has_text="Correct").wait_for(timeout=FEEDBACK_TIMEOUT_MS)
    assert "1.05" in page.locator("#q-sgd-step .quiz-answers").inner_text()
    assert "attempt 2 of 3" in page.locator("#q-sgd-step .quiz-verdict").inner_text()

    # 3. Bad input: refused in place, the typed text kept, no attempt stored.
    page.locator("#q-bias-gradient-answer").fill("4, 5, 6")
    page.locator("#q-bias-gradient").get_by_role("button", name="Check answer").click()
    page.locator("#q-bias-gradient .quiz-error", has_text="Expected 2 numbers, got 3").wait_for(
        timeout=FEEDBACK_TIMEOUT_MS
    )
    assert page.locator("#q-bias-gradient-answer").input_value() == "4, 5, 6"

    # 4. Parameterized: the learner's own numbers, answered right, then new numbers are offered.
    question = QuizQuestion.objects.get(lesson=backprop_quiz, key="linear-layer-dw")
    answer = question_variant(question, learner.pk, 0).answer
    rows = "\n".join(format_matrix(row) for row in answer)
    page.locator("#q-linear-layer-dw-answer").fill(rows)
    page.locator("#q-linear-layer-dw").get_by_role("button", name="Check answer").click()
    page.locator("#q-linear-layer-dw .quiz-verdict", has_text="Correct").wait_for(timeout=FEEDBACK_TIMEOUT_MS)
    assert "new numbers" in page.locator("#q-linear-layer-dw .quiz-retry-note").inner_text()

    score = page.locator("#quiz-score").inner_text()
    assert "Score: 2.5 / 11" in score and "3 of 11 done" in score
    assert page.evaluate("window.quizPageMarker") == "still here"
    assert QuizAttempt.objects.filter(user=learner).count() == 4
    page.screenshot(path=str(SCREENSHOTS / "quiz-desktop.png"), full_page=True)
    page.locator("#q-linear-layer-dw").screenshot(path=str(SCREENSHOTS / "quiz-desktop-parameterized.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "quiz-desktop-top.png"))

    # After a reload the feedback is still there (it comes from the stored attempts).
    page.reload()
    assert "Correct" in page.locator("#q-sgd-step .quiz-verdict").inner_text()
    # Headings in order: the page's h1, then one h2 per question, then the explanations' h3.
    levels = page.evaluate("Array.from(document.querySelectorAll('main h1, main h2, main h3')).map(h => +h.tagName[1])")
    assert levels[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels
    assert errors == [], errors


def test_the_quiz_fits_a_phone_and_works_without_javascript(
    browser, logged_in_page, live_server, learner: User, backprop_quiz: Lesson
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors = logged_in_page(learner, PHONE, refused_posts_expected=True)
    page.goto(f"{live_server.url}/lessons/backpropagation/quiz/")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    card = page.locator("#q-what-forward-must-keep")
    card.get_by_label("the input").check()
    card.get_by_label("the bias").check()
    card.get_by_role("button", name="Check answer").click()
    page.locator("#q-what-forward-must-keep .quiz-verdict", has_text="Not quite").wait_for(timeout=FEEDBACK_TIMEOUT_MS)
    page.locator("#q-what-forward-must-keep").screenshot(path=str(SCREENSHOTS / "quiz-phone-feedback.png"))
    page.screenshot(path=str(SCREENSHOTS / "quiz-phone.png"))
    assert errors == [], errors

    # The same form without JavaScript: a plain POST, a redirect back to the question.
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    context.add_cookies(page.context.cookies())
    plain = context.new_page()
    plain.goto(f"{live_server.url}/lessons/backpropagation/quiz/")
    plain.locator("#q-mse-gradient-one-output-answer").fill("1")
    plain.locator("#q-mse-gradient-one-output").get_by_role("button", name="Check answer").click()
    plain.wait_for_load_state()
    assert plain.url.endswith("#q-mse-gradient-one-output")
    assert "Correct" in plain.locator("#q-mse-gradient-one-output .quiz-verdict").inner_text()
    plain.locator("#q-mse-gradient-one-output").screenshot(path=str(SCREENSHOTS / "quiz-phone-no-js.png"))
