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
from lessons.models import Lesson
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
    Exercise.objects.filter(pk=exercise.pk).update(order=1)
    following = exercise_from_folder("mse-loss")
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

    # Tab indents by four spaces (the starter's indentation), and Ctrl+Enter submits without
    # touching the code: no blank line is inserted, in the editor or in what was submitted.
    page.click(".cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert editor_text(page).split("\n")[-1] == "    "
    replace_editor_text(page, solution())
    page.evaluate("() => { window.stillTheSamePage = true; }")
    page.keyboard.press("Control+Enter")

    # The grading shows in the panel beside the editor (no worker yet: queued), on the same page.
    page.wait_for_selector("#pane-result .grading-bar")
    page.wait_for_selector("#pane-result >> text=position 1 in the queue")
    assert page.get_attribute("#tab-result", "aria-selected") == "true"
    assert editor_text(page) == solution()
    assert Submission.objects.get(user=learner).code == solution()
    page.screenshot(path=str(SCREENSHOTS / "workspace-queued.png"), full_page=False)

    grading.worker()
    page.wait_for_selector('#pane-result [data-verdict="accepted"]', timeout=VERDICT_TIMEOUT_MS)
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
    assert page.get_attribute("#pane-result .grading-bar", "aria-valuenow") == "100"
    assert page.is_visible("#pane-result .checks-table")
    assert "Accepted" in page.inner_text(".exercise-history .history-item")  # the history follows (out-of-band)
    # Next after Accepted, and the reference beside the accepted code on the submission's page.
    next_link = page.locator("#next-exercise")
    assert next_link.get_attribute("href") == f"/exercises/{following.slug}/"
    page.screenshot(path=str(SCREENSHOTS / "workspace-accepted.png"), full_page=False)
    page.click("text=Compare with the reference solution")
    page.wait_for_selector("#reference-code")
    assert "dout.sum(axis=0)" in page.inner_text("#reference-code")
    page.screenshot(path=str(SCREENSHOTS / "submission-reference.png"), full_page=True)

    # A wrong solution: the diagnosis names the mistake, with its hint; its own page shows the diff.
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    replace_editor_text(page, wrong("linear-backward", "dw_transposed"))
    page.click("#submit-button")
    page.wait_for_selector('#pane-result [data-verdict="wrong_answer"]', timeout=VERDICT_TIMEOUT_MS)
    assert page.is_visible("text=dw looks transposed")
    assert page.is_visible(".diagnosis-hint")
    assert page.locator("#next-exercise").count() == 0
    assert page.locator('.diagnosis a[href^="/lessons/backpropagation/"]').count() == 1
    page.screenshot(path=str(SCREENSHOTS / "workspace-wrong.png"), full_page=False)
    page.click("text=Open this attempt on its own page")
    page.wait_for_url("**/submissions/*/")
    page.wait_for_selector(".diff-added")
    assert page.locator("#reference-code").count() == 0  # never before Accepted (this attempt is wrong)

    # Run on an example: printed output and the returned values beside the expected ones; no submission.
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    printing = wrong("linear-backward", "dw_transposed").replace(
        "def linear_backward(dout, x, w, b):",
        "def linear_backward(dout, x, w, b):\n    print('hello from the sandbox')",
    )
    replace_editor_text(page, printing)
    page.click("#run-button")
    page.wait_for_selector("#pane-example .example-stdout", timeout=VERDICT_TIMEOUT_MS)
    assert "hello from the sandbox" in page.inner_text("#pane-example .example-stdout")
    assert page.locator('#pane-example .example-output[data-output="dx"].is-match').count() == 1
    assert "shape" in page.inner_text('#pane-example .example-output[data-output="dw"]')
    page.screenshot(path=str(SCREENSHOTS / "workspace-example.png"), full_page=False)

    assert Submission.objects.filter(user=learner).count() == 2
    assert errors == []
    assert outside == []
    context.close()


# A mistake no named diagnosis explains (the last row of dx left at zero), from code that prints.
UNEXPLAINED_AND_PRINTING = """
import numpy as np


def linear_backward(dout, x, w, b):
    print("dout has shape", dout.shape)
    dx = dout @ w.T
    dx[-1] = 0.0
    return dx, x.T @ dout, dout.sum(axis=0)
"""


def test_an_unexplained_mistake_shows_the_smallest_failing_case_and_the_printed_output_beside_the_editor(
    logged_in_page, live_server, grading: Stack, learner: User, exercise: Exercise
) -> None:
    grading.worker()
    page, errors = logged_in_page(learner, {"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    replace_editor_text(page, UNEXPLAINED_AND_PRINTING)
    page.click("#submit-button")
    page.wait_for_selector('#pane-result [data-verdict="wrong_answer"]', timeout=VERDICT_TIMEOUT_MS)

    # The smallest failing case, open in the live panel: each input, the expected dx and the
    # learner's dx with the differing entries starred (only the last row was left at zero).
    example = page.locator("#pane-result .diagnosis-example")
    assert example.count() == 1 and example.is_visible()
    assert example.get_attribute("open") is not None
    assert "The smallest failing case" in example.locator("summary").inner_text()
    rows = {
        label: value
        for label, value in zip(
            example.locator("dt").all_inner_texts(), example.locator("dd pre").all_inner_texts(), strict=True
        )
    }
    assert {"input dout", "input x", "input w", "input b", "expected dx", "your dx (* = differs)"} <= set(rows)
    assert "*" not in rows["expected dx"]
    got_lines = rows["your dx (* = differs)"].splitlines()
    assert len(got_lines) >= 2
    assert "*" in got_lines[-1] and all("*" not in line for line in got_lines[:-1])
    assert all(float(entry.rstrip("*]")) == 0.0 for entry in got_lines[-1].strip(" []").split())
    assert got_lines[0].strip(" [").split()[:1] == rows["expected dx"].splitlines()[0].strip(" [").split()[:1]

    # What the learner's code printed, in the same panel.
    printed = page.locator("#pane-result .printed-output")
    assert printed.is_visible()
    assert "What your code printed" in printed.locator("h3").inner_text()
    assert "dout has shape (" in printed.locator("pre").inner_text()
    example.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "workspace-failing-case.png"), full_page=False)
    assert errors == []
    page.context.close()


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
