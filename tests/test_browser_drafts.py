"""Editor drafts on a shared computer: each account sees only its own, and logging out forgets them.

Two learners use one browser profile (one Playwright context) in turn, as on a lab computer.
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User

from grader.models import Exercise
from lessons.models import Lesson
from tests.conftest import PASSWORD
from tests.submission_helpers import exercise_from_folder

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET_LINE = "# ada's private attempt 41"


@pytest.fixture
def exercise(db: None) -> Exercise:
    Lesson.objects.create(slug="backpropagation", title="Backpropagation Explained", question="How?")
    return exercise_from_folder("linear-backward")


def _log_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/?next=/exercises/linear-backward/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")


def _drafts(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "() => Object.fromEntries(Object.keys(localStorage).filter(k => k.startsWith('gradlab:draft:'))"
        ".map(k => [k, localStorage.getItem(k)]))"
    )


def _editor_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate("() => window.gradlabExerciseEditor.getValue()")


def test_a_draft_is_keyed_by_its_account_and_forgotten_at_logout(
    browser, live_server, learner: User, other_learner: User, exercise: Exercise
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _log_in(page, live_server.url, learner.username)
    page.click(".cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("\n" + SECRET_LINE)
    drafts = _drafts(page)
    assert list(drafts) == [f"gradlab:draft:u{learner.pk}:linear-backward"]
    assert SECRET_LINE in drafts[f"gradlab:draft:u{learner.pk}:linear-backward"]

    # A draft left by an older page version (no owner in the key) is forgotten too.
    page.evaluate("() => localStorage.setItem('gradlab:draft:linear-backward', 'legacy draft')")
    page.click("form[action='/accounts/logout/'] button")
    page.wait_for_load_state("load")
    assert _drafts(page) == {}

    # The next person (anonymous first, then signed in) starts from the starter code.
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    assert SECRET_LINE not in _editor_text(page)
    _log_in(page, live_server.url, other_learner.username)
    assert SECRET_LINE not in _editor_text(page)
    assert "def linear_backward(dout, x, w, b):" in _editor_text(page)


def test_a_session_that_ends_without_logout_leaves_no_draft_for_the_next_account(
    browser, live_server, learner: User, other_learner: User, exercise: Exercise
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _log_in(page, live_server.url, learner.username)
    page.click(".cm-content")
    page.keyboard.insert_text(SECRET_LINE + "\n")
    assert _drafts(page)
    context.clear_cookies()  # the session expired, or the browser dropped it: no logout click
    _log_in(page, live_server.url, other_learner.username)
    assert SECRET_LINE not in _editor_text(page)
    assert _drafts(page) == {}
    context.close()
