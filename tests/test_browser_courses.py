"""A course run in headless Chromium, graded by a real Celery worker through Redis.

An instructor creates a course and an assignment (last submission counts, 10% per day late)
through the pages; a learner joins with the join code and submits in the editor before the
due time and after it; the gradebook shows the late flag, its cell links to both submissions;
the instructor overrides the score with a reason (audit log), then previews a regrade and
applies it, following the progress. Screenshots (desktop and phone, light and dark) go to
tests/screenshots/courses-*.png (git-ignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from courses.models import Assignment, Course, Enrollment, GradeChange, ItemScore, RegradeJob, RegradeStatus
from grader.models import Submission
from tests.conftest import PASSWORD, SCREENSHOTS
from tests.course_helpers import make_course
from tests.submission_helpers import exercise_from_folder, solution, wrong
from tests.test_browser_submission import replace_editor_text
from tests.test_celery_integration import Stack, redis_server  # noqa: F401 (a fixture used below)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

VERDICT_TIMEOUT_MS = 90_000
PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def grading(request: pytest.FixtureRequest) -> Iterator[Stack]:
    stack = Stack(request.getfixturevalue("redis_server"))
    stack.worker()
    yield stack
    stack.stop()


def log_in(browser: Any, live_server: Any, user: User, errors: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/?next=/courses/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/courses/")
    return page


def shoot(page: Any, name: str) -> None:
    """Desktop light, then phone dark, of the page as it is."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"courses-{name}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(SCREENSHOTS / f"courses-{name}-phone-dark.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(size)


def submit(page: Any, live_server: Any, code: str, verdict: str) -> None:
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.wait_for_selector(".cm-editor")
    replace_editor_text(page, code)
    page.click("#submit-button")
    page.wait_for_selector(f'#pane-result [data-verdict="{verdict}"]', timeout=VERDICT_TIMEOUT_MS)


def test_an_instructor_runs_a_course_with_a_deadline_gradebook_override_and_regrade(
    browser: Any, live_server: Any, grading: Stack, instructor: User, learner: User
) -> None:
    exercise_from_folder("linear-backward")
    errors: list[str] = []

    # The instructor creates the course and an assignment through the pages.
    staff_page = log_in(browser, live_server, instructor, errors)
    staff_page.fill("#course-title", "Deep learning 101")
    staff_page.fill("#course-slug", "dl-101")
    staff_page.fill("#course-term", "Spring 2027")
    staff_page.click("text=Create course")
    staff_page.wait_for_url("**/courses/dl-101/")
    join_code = staff_page.inner_text("[data-testid=join-code]").strip()
    assert join_code == Course.objects.get(slug="dl-101").join_code

    berlin_now = timezone.now() + timedelta(hours=1)  # the browser's zone is Europe/Berlin (UTC+1 in December)
    staff_page.fill("#a-title", "Backprop week")
    staff_page.fill("#a-opens", (berlin_now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    staff_page.fill("#a-due", (berlin_now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    staff_page.select_option("#a-late", "penalty_per_day")
    staff_page.fill("#a-penalty", "10")
    staff_page.select_option("#a-counting", "last")
    staff_page.select_option("#item-1", "exercise:linear-backward")
    staff_page.fill("#points-1", "10")
    staff_page.click("text=Create assignment")
    staff_page.wait_for_url(re.compile(r".*/courses/dl-101/assignments/\d+/$"))
    assignment = Assignment.objects.get(course__slug="dl-101")
    # Read in the browser's zone: due in two hours from now, whatever the server's zone.
    assert abs((assignment.due_at - timezone.now()).total_seconds() - 7200) < 120

    # The learner joins with the code and reads what counts, in their own time zone.
    learner_page = log_in(browser, live_server, learner, errors)
    learner_page.fill("#join-code", join_code.lower())
    learner_page.click("main button:has-text('Join')")
    learner_page.wait_for_url("**/courses/dl-101/")
    assert Enrollment.objects.filter(user=learner, course=assignment.course).exists()
    learner_page.click("text=Backprop week")
    learner_page.wait_for_selector("[data-testid=counting]")
    assert "last submission" in learner_page.inner_text("[data-testid=counting]")
    assert "10% of its points per started day late" in learner_page.inner_text("[data-testid=late-policy]")
    due_text = learner_page.inner_text(".rules time")
    assert "UTC" not in due_text  # formatted by the browser (Intl) in Europe/Berlin
    shoot(learner_page, "assignment-learner")

    # Before the due time: the reference solution. Then the due time passes; a wrong one, late.
    submit(learner_page, live_server, solution(), "accepted")
    # Due just after the first submission was made: a fast grade can finish within a second of it.
    first = Submission.objects.filter(user=learner).latest("created_at")
    Assignment.objects.filter(pk=assignment.pk).update(due_at=first.created_at + timedelta(milliseconds=1))
    submit(learner_page, live_server, wrong("linear-backward", "dw_transposed"), "wrong_answer")
    learner_page.goto(f"{live_server.url}/")
    learner_page.wait_for_selector("#my-courses-title")
    assert "Backprop week" in learner_page.inner_text(".my-courses")

    # The gradebook shows the counting (last, late) submission with its late flag.
    staff_page.goto(f"{live_server.url}/courses/dl-101/gradebook/")
    cell = staff_page.locator("table.gradebook tbody td.is-late").first
    cell.wait_for()
    assert "late" in cell.inner_text()
    score = ItemScore.objects.get(learner=learner)
    assert score.is_late and score.late_days == 1
    shoot(staff_page, "gradebook")

    # One click to the learner's submissions: both are there, the late one marked.
    cell.locator("a").click()
    staff_page.wait_for_selector("#subs-title")
    entries = staff_page.locator(".submission-entry")
    assert entries.count() == 2
    assert "late" in entries.nth(0).inner_text()
    assert "late" not in entries.nth(1).locator("summary").inner_text()

    # Override with a reason; it lands in the audit log.
    staff_page.fill("#ov-points", "8")
    staff_page.fill("#ov-reason", "Late because of the outage on Monday")
    staff_page.click("button:has-text('Override')")
    staff_page.wait_for_selector("text=Score overridden")
    assert staff_page.inner_text("[data-testid=cell-points]").startswith("8")
    shoot(staff_page, "learner-item")
    staff_page.goto(f"{live_server.url}/courses/dl-101/audit/")
    audit = staff_page.inner_text("[data-testid=grade-changes]")
    assert "Late because of the outage on Monday" in audit
    assert GradeChange.objects.filter(changed_by=instructor, reason__startswith="Late because").exists()

    # Regrade: a dry run first (progress, then what would change), then the real one.
    staff_page.goto(f"{live_server.url}{assignment.get_absolute_url()}")
    staff_page.click("text=Preview regrade (dry run)")
    staff_page.wait_for_url(re.compile(r".*/regrades/\d+/$"))
    staff_page.wait_for_selector("[data-testid=regrade-status]:has-text('Done')", timeout=VERDICT_TIMEOUT_MS)
    assert staff_page.inner_text("[data-testid=verdicts-changed]") == "0"
    assert "2/2" in staff_page.inner_text(".summary-strip")
    shoot(staff_page, "regrade-preview")
    staff_page.click("text=Apply the regrade")
    staff_page.wait_for_selector("[data-testid=regrade-status]:has-text('Done')", timeout=VERDICT_TIMEOUT_MS)
    applied = RegradeJob.objects.get(mode="apply")
    assert (applied.status, applied.done, applied.total) == (RegradeStatus.DONE, 2, 2)
    # The old results are kept: the submissions themselves were not rewritten.
    assert sorted(Submission.objects.filter(user=learner).values_list("graded_count", flat=True)) == [1, 1]
    assert ItemScore.objects.get(learner=learner).points == 8.0  # the override still stands

    assert errors == []


IN_VIEW = """(selector) => {
    const box = document.querySelector(selector).getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
}"""
FIELD_COLOURS = """(selector) => {
    const style = getComputedStyle(document.querySelector(selector));
    return [style.backgroundColor, style.color, style.borderTopColor];
}"""


def test_a_refused_new_assignment_keeps_its_entries_and_shows_why_on_a_phone(
    live_server: Any, logged_in_page: Any, instructor: User
) -> None:
    """Before, a refusal (due before opens) sent the instructor back to the top of the course page with a
    message there and an empty form: title, times, policy and items all to type again."""
    exercise_from_folder("linear-backward")
    make_course(instructor, slug="dl-102")
    page, errors = logged_in_page(instructor, PHONE, refused_posts_expected=True)
    page.emulate_media(color_scheme="dark")
    page.goto(f"{live_server.url}/courses/dl-102/")
    # The invite link's field is drawn like the form's fields (it was the browser's default grey box).
    assert page.evaluate(FIELD_COLOURS, ".copy-field") == page.evaluate(FIELD_COLOURS, "#a-title")

    page.fill("#a-title", "Backprop week")
    page.fill("#a-opens", "2027-03-08T09:00")
    page.fill("#a-due", "2027-03-01T17:00")
    page.select_option("#a-late", "penalty_per_day")
    page.fill("#a-penalty", "25")
    page.select_option("#a-counting", "last")
    page.select_option("#item-2", "exercise:linear-backward")
    page.fill("#points-2", "7.5")
    page.click("text=Create assignment")
    page.wait_for_selector("[data-testid=assignment-error]")
    assert "The due time must be after the open time." in page.inner_text("[data-testid=assignment-error]")
    # The page opens on the reason and the first of the kept entries, not on the page's top.
    assert page.evaluate(IN_VIEW, "[data-testid=assignment-error]"), "the reason is off screen"
    assert page.evaluate(IN_VIEW, "#a-title"), "the kept entries are off screen"
    kept = {"#a-title": "Backprop week", "#a-opens": "2027-03-08T09:00", "#a-due": "2027-03-01T17:00"}
    kept |= {"#a-late": "penalty_per_day", "#a-penalty": "25", "#a-counting": "last"}
    kept |= {"#item-2": "exercise:linear-backward", "#points-2": "7.5", "#item-1": ""}
    assert {selector: page.input_value(selector) for selector in kept} == kept
    page.screenshot(path=str(SCREENSHOTS / "courses-assignment-refused-phone-dark.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")

    page.fill("#a-due", "2027-03-15T17:00")  # corrected, nothing else typed again
    page.click("text=Create assignment")
    page.wait_for_url(re.compile(r".*/courses/dl-102/assignments/\d+/$"))
    assignment = Assignment.objects.get(course__slug="dl-102")
    assert (assignment.title, assignment.late_policy, assignment.counting) == (
        "Backprop week",
        "penalty_per_day",
        "last",
    )
    assert [item.points for item in assignment.items.all()] == [7.5]
    assert errors == []
