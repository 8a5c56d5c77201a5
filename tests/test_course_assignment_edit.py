"""Changing an assignment from its page: an instructor moves the due time or changes the rules, and every
learner is recounted with the audit log saying why; a refusal keeps the entries; TAs, learners and outsiders
cannot; and in Chromium the form shows the stored times in the reader's zone and sends them back unchanged."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from courses.models import Assignment, Course, GradeChange, GradeChangeCause, ItemScore, LatePolicy
from tests.course_helpers import enroll, graded_submission, make_assignment, make_course, make_exercise, make_ta

pytestmark = pytest.mark.django_db

DUE = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def course(instructor: User, learner: User) -> Course:
    course = make_course(instructor)
    enroll(course, learner)
    return course


@pytest.fixture
def assignment(course: Course, learner: User, django_capture_on_commit_callbacks: Any) -> Assignment:
    """Due DUE, 50% per day late; the learner's only work came 10 minutes late (5 of 10 points)."""
    exercise = make_exercise()
    assignment = make_assignment(course, [exercise], due_at=DUE, late_policy=LatePolicy.PENALTY_PER_DAY)
    Assignment.objects.filter(pk=assignment.pk).update(late_penalty_percent=50)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE + timedelta(minutes=10), score=1.0)
    score = ItemScore.objects.get(learner=learner)
    assert (score.points, score.is_late) == (5.0, True)
    return assignment


def _form(**changes: str) -> dict[str, str]:
    # The stored values as the form sends them without its script: UTC, tz_offset 0.
    form = {
        "title": "Backprop",
        "opens_at": "2027-02-22T17:00",
        "due_at": "2027-03-01T17:00",
        "tz_offset": "0",
        "late_policy": "penalty_per_day",
        "late_penalty_percent": "50",
        "counting": "best",
        "hint_penalty_percent": "0",
    }
    return form | changes


def test_moving_the_due_time_recounts_every_learner_with_the_reason_in_the_audit_log(
    instructor: User, learner: User, course: Course, assignment: Assignment
) -> None:
    url = reverse("assignment_edit", args=[course.slug, assignment.pk])
    # 18:00 in UTC+1 is 17:00 UTC: the same times, so nothing changes.
    same = _form(opens_at="2027-02-22T18:00", due_at="2027-03-01T18:00", tz_offset="60")
    response = _client(instructor).post(url, same, follow=True)
    assert "Nothing changed: the assignment already had these values." in response.content.decode()
    response = _client(instructor).post(url, _form(due_at="2027-03-02T09:30", title="Backprop, part 1"), follow=True)
    assert "Assignment updated: title, due time. The scores of 1 learner(s) were recounted" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.title == "Backprop, part 1" and assignment.due_at == datetime(2027, 3, 2, 9, 30, tzinfo=UTC)
    score = ItemScore.objects.get(learner=learner)
    assert (score.points, score.is_late) == (10.0, False)  # the work is on time now
    change = GradeChange.objects.filter(learner=learner).latest("id")
    assert (change.cause, change.old_points, change.new_points) == (GradeChangeCause.RECOMPUTE, 5.0, 10.0)
    assert change.reason == "Assignment changed: due time" and change.changed_by == instructor
    # A title alone recounts nobody.
    _client(instructor).post(url, _form(due_at="2027-03-02T09:30", title="Backprop"))
    assert GradeChange.objects.filter(learner=learner).latest("id").pk == change.pk


def test_an_extension_the_new_due_time_passed_no_longer_makes_that_learner_due_earlier(
    instructor: User, learner: User, other_learner: User, course: Course, assignment: Assignment
) -> None:
    from courses import services

    services.extension_grant(assignment, learner.pk, due_at=DUE + timedelta(hours=1), reason="", by=instructor)
    assert ItemScore.objects.get(learner=learner).points == 10.0  # on time with the extension
    url = reverse("assignment_edit", args=[course.slug, assignment.pk])
    _client(instructor).post(url, _form(due_at="2027-03-05T17:00"))  # everyone now has until March 5
    assignment.refresh_from_db()
    assert services.learner_due_at(assignment, learner.pk) == assignment.due_at
    page = _client(learner).get(assignment.get_absolute_url()).content.decode()
    assert "your extension" not in page and 'datetime="2027-03-05T17:00:00+00:00"' in page
    # Moved back before the extension's time, the extension counts again.
    _client(instructor).post(url, _form(due_at="2027-03-01T12:00"))
    assignment.refresh_from_db()
    assert services.learner_due_at(assignment, learner.pk) == DUE + timedelta(hours=1)
    assert "your extension" in _client(learner).get(assignment.get_absolute_url()).content.decode()
    assert ItemScore.objects.get(learner=learner).points == 10.0


def test_a_hard_close_drops_the_late_work_and_the_penalty(
    instructor: User, learner: User, course: Course, assignment: Assignment
) -> None:
    url = reverse("assignment_edit", args=[course.slug, assignment.pk])
    _client(instructor).post(url, _form(late_policy="hard_close"))
    assignment.refresh_from_db()
    assert (assignment.late_policy, assignment.late_penalty_percent) == ("hard_close", 0.0)
    assert ItemScore.objects.get(learner=learner).points is None


def test_a_refused_change_keeps_the_entries_and_changes_nothing(
    instructor: User, learner: User, course: Course, assignment: Assignment
) -> None:
    url = reverse("assignment_edit", args=[course.slug, assignment.pk])
    sent = _form(title="Renamed", due_at="2027-02-20T10:00", late_penalty_percent="25")
    response = _client(instructor).post(url, sent)
    assert response.status_code == 400
    page = response.content.decode()
    form = page[page.index('data-testid="edit-assignment"') :].split("</form>")[0]
    assert "The due time must be after the open time." in form
    for name in ("title", "opens_at", "due_at", "late_penalty_percent"):
        assert f'name="{name}"' in form and f'value="{sent[name]}"' in form, name
    assert "data-utc" not in form  # what was typed is in the reader's zone already
    assert '<option value="penalty_per_day" selected>' in form
    assignment.refresh_from_db()
    assert (assignment.title, assignment.due_at, assignment.late_penalty_percent) == ("Backprop", DUE, 50.0)
    response = _client(instructor).post(url, _form(late_penalty_percent="lots"))
    assert response.status_code == 400 and "must be numbers" in response.content.decode()


def test_only_owners_and_instructors_change_an_assignment(
    learner: User, other_learner: User, course: Course, assignment: Assignment
) -> None:
    ta = User.objects.create_user("tara")
    make_ta(course, ta)
    url = reverse("assignment_edit", args=[course.slug, assignment.pk])
    assert _client(ta).post(url, _form(title="TA was here")).status_code == 403
    assert 'data-testid="edit-assignment"' not in _client(ta).get(assignment.get_absolute_url()).content.decode()
    assert _client(learner).post(url, _form(title="Learner was here")).status_code == 403
    assert _client(other_learner).post(url, _form(title="Outsider was here")).status_code == 404
    assert _client(learner).get(url).status_code == 403
    assignment.refresh_from_db()
    assert assignment.title == "Backprop"


os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_form_shows_the_stored_times_in_the_readers_zone_and_sends_them_back(
    browser: Any, live_server: Any, instructor: User, learner: User
) -> None:
    pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")
    course = make_course(instructor)
    enroll(course, learner)
    assignment = make_assignment(course, [make_exercise()], due_at=DUE)
    client = _client(instructor)
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="America/New_York")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(live_server.url + assignment.get_absolute_url())
    page.click("details.edit-assignment summary")
    assert page.input_value("#e-due") == "2027-03-01T12:00"  # 17:00 UTC in New York (UTC-5)
    assert page.input_value("#e-opens") == "2027-02-22T12:00"
    page.click("text=Save changes")
    page.wait_for_load_state("networkidle")
    assert "Nothing changed" in page.inner_text("main")
    page.click("details.edit-assignment summary")
    page.fill("#e-due", "2027-03-03T09:00")
    page.click("text=Save changes")
    page.wait_for_load_state("networkidle")
    assert "Assignment updated: due time." in page.inner_text("main")
    assignment.refresh_from_db()
    assert assignment.due_at == datetime(2027, 3, 3, 14, 0, tzinfo=UTC)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert errors == []
    context.close()
