"""A learner answers the backpropagation quiz in headless Chromium (Debian's) against a live server.

One right answer, one wrong, one bad input (refused in place, no attempt), one
parameterized question; feedback appears in place (no page load) and the score
updates. Screenshots go to tests/screenshots/ (git-ignored), desktop and phone.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from gradlab.contentio import ContentReport
from quizzes.models import Lesson, QuizAttempt, QuizQuestion
from quizzes.quiz_content import load_quizzes
from quizzes.quiz_grading import format_matrix
from quizzes.quiz_services import question_variant
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


def logged_in_page(browser, live_server, user: User, viewport: dict[str, int]):  # type: ignore[no-untyped-def]
    """A page whose browser context carries the learner's session cookie."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    errors: list[str] = []
    # Chromium logs every 4xx response as a console error; the refused answer (400) is expected and
    # checked on the page, so failed responses are recorded by URL and console noise about them is dropped.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.request.method} {response.url}")
            if response.status >= 400 and not (response.status == 400 and response.request.method == "POST")
            else None
        ),
    )
    return page, errors


def test_a_learner_answers_the_quiz_in_chromium(browser, live_server, learner: User, backprop_quiz: Lesson) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors = logged_in_page(browser, live_server, learner, DESKTOP)
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

    # 2. Wrong: numeric, with the expected answer and the explanation shown.
    page.locator("#q-sgd-step-answer").fill("0.55")
    page.locator("#q-sgd-step").get_by_role("button", name="Check answer").click()
    page.locator("#q-sgd-step .quiz-verdict", has_text="Not quite").wait_for(timeout=FEEDBACK_TIMEOUT_MS)
    assert "1.05" in page.locator("#q-sgd-step .quiz-answers").inner_text()

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
    assert "Score: 2 / 11" in score and "3 of 11 answered" in score
    assert page.evaluate("window.quizPageMarker") == "still here"
    assert QuizAttempt.objects.filter(user=learner).count() == 3
    page.screenshot(path=str(SCREENSHOTS / "quiz-desktop.png"), full_page=True)
    page.locator("#q-sgd-step").screenshot(path=str(SCREENSHOTS / "quiz-desktop-wrong.png"))
    page.locator("#q-linear-layer-dw").screenshot(path=str(SCREENSHOTS / "quiz-desktop-parameterized.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "quiz-desktop-top.png"))

    # After a reload the feedback is still there (it comes from the stored attempts).
    page.reload()
    assert page.locator("#q-sgd-step .quiz-verdict").inner_text().strip().endswith("Not quite")
    assert errors == [], errors


def test_the_quiz_fits_a_phone_and_works_without_javascript(
    browser, live_server, learner: User, backprop_quiz: Lesson
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors = logged_in_page(browser, live_server, learner, PHONE)
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
