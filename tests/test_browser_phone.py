"""Exercise, submission and progress pages on a phone-sized screen in Chromium: nothing scrolls sideways."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User

from grader.engine import Engine
from grader.verdicts import Verdict
from tests.conftest import SCREENSHOTS
from tests.submission_helpers import EXERCISES_DIR, exercise_from_folder, graded_submission

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sideways_overflow(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_the_exercise_and_a_graded_submission_fit_a_phone(logged_in_page, live_server, learner: User) -> None:
    exercise = exercise_from_folder("conv2d-backward")
    # A graded wrong answer (graded here by the real engine, as a worker would) to show its verdict.
    code = (EXERCISES_DIR / "conv2d-backward" / "wrong" / "stride_ignored.py").read_text()
    submission = graded_submission(Engine.get(), learner, exercise, code)
    assert submission.verdict == Verdict.WRONG_ANSWER
    page, errors = logged_in_page(learner, PHONE)

    page.goto(f"{live_server.url}/exercises/conv2d-backward/")
    page.wait_for_selector(".cm-editor", timeout=WAIT_MS)
    page.wait_for_selector(".katex", timeout=WAIT_MS)
    assert sideways_overflow(page) <= 1
    page.screenshot(path=str(SCREENSHOTS / "exercise-phone.png"))

    page.goto(f"{live_server.url}/submissions/{submission.pk}/")
    page.wait_for_selector("text=ignores the stride", timeout=WAIT_MS)
    page.wait_for_selector("canvas", timeout=WAIT_MS)
    assert sideways_overflow(page) <= 1
    page.screenshot(path=str(SCREENSHOTS / "submission-phone.png"), full_page=True)

    page.goto(f"{live_server.url}/progress/")
    assert page.locator(f"a[href='/submissions/{submission.pk}/']").count() >= 1
    assert sideways_overflow(page) <= 1
    assert errors == []


def test_a_diverging_loss_is_charted_with_powers_of_ten_only(logged_in_page, live_server, learner: User) -> None:
    """Gradients of the wrong sign, four times too large: the learner's loss grows by three to four decades."""
    exercise = exercise_from_folder("linear-backward")
    code = (
        "def linear_backward(dout, x, w, b):\n    return -4 * (dout @ w.T), -4 * (x.T @ dout), -4 * dout.sum(axis=0)\n"
    )
    submission = graded_submission(Engine.get(), learner, exercise, code)
    losses = submission.result["training"]["learner_loss"]
    assert max(losses) / min(losses) > 50  # the chart switches to a logarithmic axis
    page, errors = logged_in_page(learner, PHONE)

    page.goto(f"{live_server.url}/submissions/{submission.pk}/")
    page.wait_for_selector('#loss-chart[data-drawn="true"]', timeout=WAIT_MS)
    labels = page.evaluate(
        "window.Chart.getChart(document.getElementById('loss-chart')).scales.y.ticks"
        ".map((tick) => tick.label).filter((label) => label !== '')"
    )
    powers = {"0.1", "1", "10", "100", "1000", *(f"1e{n}" for n in range(4, 40))}
    assert labels and set(labels) <= powers and len(labels) <= 9, labels
    assert errors == []
