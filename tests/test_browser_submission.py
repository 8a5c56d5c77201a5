"""A learner solves linear-backward in headless Chromium, graded by a real Celery worker through Redis.

Logs in through the form, types a solution into the CodeMirror editor (the draft
survives a reload), submits, watches the submission page go from "queued" (the worker
is started only then) to Accepted without a page load, with the loss chart drawn;
then submits a wrong solution and reads its diagnosis and the diff. Screenshots go to
tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from grader.models import Exercise, Submission
from quizzes.models import Lesson
from tests.conftest import PASSWORD, SCREENSHOTS
from tests.submission_helpers import exercise_from_folder, solution, wrong
from tests.test_celery_integration import Stack, redis_server  # noqa: F401 (a fixture used below)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

VERDICT_TIMEOUT_MS = 90_000

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def grading(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Workers on a Redis of this test's own (tests/test_celery_integration.py); none is started yet."""
    stack = Stack(request.getfixturevalue("redis_server"))
    yield stack
    stack.stop()


@pytest.fixture
def exercise(db: None) -> Exercise:
    Lesson.objects.create(slug="backpropagation", title="Backpropagation Explained", question="How?")
    return exercise_from_folder("linear-backward")


def replace_editor_text(page, code: str) -> None:  # type: ignore[no-untyped-def]
    """Select everything in the editor and type `code` over it (as one text input, like a paste)."""
    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def editor_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate("() => window.gradlabExerciseEditor.getValue()")


def test_a_learner_submits_in_the_editor_watches_the_grading_and_reads_the_verdicts(
    browser, live_server, grading: Stack, learner: User, exercise: Exercise
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    outside: list[str] = []
    page.on(
        "request", lambda request: outside.append(request.url) if not request.url.startswith(live_server.url) else None
    )

    # Log in through the form.
    page.goto(f"{live_server.url}/accounts/login/?next=/exercises/linear-backward/")
    page.fill("input[name=username]", learner.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/exercises/linear-backward/")

    # The statement's math is rendered; the editor replaced the textarea and holds the starter code.
    page.wait_for_selector(".cm-editor")
    page.wait_for_selector(".exercise-statement .katex")
    assert "def linear_backward(dout, x, w, b):" in editor_text(page)
    assert page.is_hidden("textarea#code")

    # Type the solution; the draft survives a reload.
    replace_editor_text(page, solution())
    assert editor_text(page) == solution()
    page.reload()
    page.wait_for_selector(".cm-editor")
    assert editor_text(page) == solution()
    page.screenshot(path=str(SCREENSHOTS / "exercise-editor.png"), full_page=True)

    # Submit while no worker runs: the page shows the queue, then follows the grading live.
    page.click("#submit-button")
    page.wait_for_url("**/submissions/*/")
    page.wait_for_selector(".grading-bar")
    page.wait_for_selector("text=position 1 in the queue")
    page.evaluate("() => { window.stillTheSamePage = true; }")
    page.screenshot(path=str(SCREENSHOTS / "submission-queued.png"), full_page=True)

    grading.worker()
    page.wait_for_selector('[data-verdict="accepted"]', timeout=VERDICT_TIMEOUT_MS)
    assert page.evaluate("() => window.stillTheSamePage") is True  # updated by polling, not a reload
    page.wait_for_selector('#loss-chart[data-drawn="true"]')
    drawn_pixels = page.evaluate(
        """() => {
            const canvas = document.getElementById('loss-chart');
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }"""
    )
    assert drawn_pixels > 1000
    assert page.get_attribute(".grading-bar", "aria-valuenow") == "100"
    assert page.is_visible("text=Accepted")
    assert page.is_visible(".checks-table")
    assert "Accepted" in page.inner_text(".history-item.is-current")  # the history follows too (out-of-band swap)
    page.locator("#loss-chart").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "submission-accepted.png"), full_page=True)

    # A wrong solution: the diagnosis names the mistake, with its hint, and the diff shows the change.
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    replace_editor_text(page, wrong("linear-backward", "dw_transposed"))
    page.click("#submit-button")
    page.wait_for_url("**/submissions/*/")
    page.wait_for_selector('[data-verdict="wrong_answer"]', timeout=VERDICT_TIMEOUT_MS)
    assert page.is_visible("text=dw looks transposed")
    assert page.is_visible(".diagnosis-hint")
    assert page.is_visible(".diff-added")
    assert page.locator('.diagnosis a[href^="/lessons/backpropagation/"]').count() == 1
    page.screenshot(path=str(SCREENSHOTS / "submission-wrong.png"), full_page=True)

    assert Submission.objects.filter(user=learner).count() == 2
    assert errors == []
    assert outside == []
    context.close()


def test_the_api_docs_render_under_the_sites_content_security_policy(browser, live_server, db: None) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/api/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector('.opblock-summary-path[data-path="/api/submissions"]')
    assert "Gradlab API" in page.inner_text(".swagger-ui .info .title")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"), full_page=False)
    assert errors == []
