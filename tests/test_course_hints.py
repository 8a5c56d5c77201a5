"""Hints charged by an assignment: only reveals before the counting submission, a share of the item's points
each, never below 0; shown to the learner and the staff, audited, in the API, recounted on a change."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from courses.models import Assignment, AssignmentScore, GradeChange, GradeChangeCause, ItemScore
from grader.hints import hint_reveal
from grader.models import Exercise, HintReveal
from tests.course_helpers import enroll, graded_submission, make_assignment, make_course, make_exercise

pytestmark = pytest.mark.django_db


def hinted_exercise(slug: str = "linear-backward") -> Exercise:
    exercise = make_exercise(slug)
    exercise.hints = ["The idea.", "The shapes.", "The formula."]
    exercise.save(update_fields=["hints"])
    return exercise


def setup(instructor: User, learner: User, *, percent: float = 10.0) -> tuple[Assignment, Exercise]:
    """An assignment due tomorrow (opened six days ago) with one 10-point exercise with three hints."""
    course = make_course(instructor)
    enroll(course, learner)
    exercise = hinted_exercise()
    assignment = make_assignment(course, [exercise], hint_penalty_percent=percent)
    return assignment, exercise


def item_score(learner: User) -> ItemScore:
    return ItemScore.objects.get(learner=learner)


def test_hints_revealed_before_the_counting_submission_cost_their_share(
    instructor: User, learner: User, announcements: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    assignment, exercise = setup(instructor, learner, percent=10)
    hint_reveal(user=learner, exercise=exercise, level=1)
    hint_reveal(user=learner, exercise=exercise, level=2)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=1.0)
    row = item_score(learner)
    assert (row.points, row.computed_points, row.hints_charged, row.hint_penalty, row.hints_seen) == (
        8.0,
        8.0,
        2,
        2.0,
        2,
    )
    assert AssignmentScore.objects.get(learner=learner).score == 8.0
    # What the LTI outbox listens to carries the charged total.
    assert announcements[-1]["score"] == 8.0 and announcements[-1]["assignment"] == assignment
    change = GradeChange.objects.filter(learner=learner).latest("id")
    assert (change.cause, change.new_points) == (GradeChangeCause.SUBMISSION, 8.0)
    assert change.reason == "2 hint(s) charged: -2 points"


def test_a_reveal_after_the_counting_submission_costs_nothing_and_is_recorded_for_the_staff(
    instructor: User, learner: User, announcements: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    _, exercise = setup(instructor, learner, percent=25)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() - timedelta(hours=1), score=1.0)
    announced = len(announcements)
    with django_capture_on_commit_callbacks(execute=True):
        hint_reveal(user=learner, exercise=exercise, level=1)
    row = item_score(learner)
    assert (row.points, row.hints_charged, row.hint_penalty) == (10.0, 0, 0.0)
    assert row.hints_seen == 1  # the reveal recounted the learner's assignment at once
    assert len(announcements) == announced  # the total did not change: nothing is sent to the LMS
    # Work after the reveal pays for it; "best" keeps the earlier, uncharged 10 points.
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=1.0)
    row = item_score(learner)
    assert (row.points, row.hints_charged) == (10.0, 0)


def test_last_counting_charges_the_hints_before_the_last_submission(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, exercise = setup(instructor, learner, percent=25)
    Assignment.objects.filter(pk=assignment.pk).update(counting="last")
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() - timedelta(hours=1), score=1.0)
        hint_reveal(user=learner, exercise=exercise, level=1)
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=1.0)
    row = item_score(learner)
    assert (row.points, row.hints_charged, row.hint_penalty) == (7.5, 1, 2.5)


def test_the_charge_never_takes_a_score_below_zero(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    _, exercise = setup(instructor, learner, percent=40)
    for level in (1, 2, 3):
        hint_reveal(user=learner, exercise=exercise, level=level)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=0.5)
    row = item_score(learner)
    # 5 points earned, 3 x 4 points charged: 0, and the charge shown is what was actually taken.
    assert (row.points, row.hints_charged, row.hint_penalty) == (0.0, 3, 5.0)


def test_hints_are_free_by_default_but_still_counted_for_the_staff(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    _, exercise = setup(instructor, learner, percent=0)
    hint_reveal(user=learner, exercise=exercise, level=1)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=1.0)
    row = item_score(learner)
    assert (row.points, row.hints_charged, row.hint_penalty) == (10.0, 1, 0.0)


def test_the_learner_page_states_the_price_and_what_was_charged(
    client: Client, instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, exercise = setup(instructor, learner, percent=15)
    hint_reveal(user=learner, exercise=exercise, level=1)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=1.0)
    client.force_login(learner)
    page = client.get(assignment.get_absolute_url()).content.decode()
    assert "each hint costs 15% of this item" in page
    assert "Each hint you reveal on an exercise costs 15% of that item's points" in page
    assert "1 hint: &minus;1.5" in page
    free_course = make_course(instructor, slug="free-101")
    enroll(free_course, learner)
    free = make_assignment(free_course, [exercise])
    page = client.get(free.get_absolute_url()).content.decode()
    assert "Hints are free on this assignment." in page and "each hint costs" not in page


def test_the_gradebook_cell_and_detail_show_the_hints(
    client: Client, instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, exercise = setup(instructor, learner, percent=10)
    hint_reveal(user=learner, exercise=exercise, level=1)
    hint_reveal(user=learner, exercise=exercise, level=2)
    HintReveal.objects.update(revealed_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() - timedelta(minutes=1), score=1.0)
        hint_reveal(user=learner, exercise=exercise, level=3)  # after: not charged
    client.force_login(instructor)
    course = assignment.course
    book = client.get(reverse("gradebook", args=[course.slug])).content.decode()
    assert 'title="2 hint(s) revealed before the counted submission, -2 points">hint&times;2</span>' in book
    item = assignment.items.get()
    detail = client.get(reverse("learner_item", args=[course.slug, learner.pk, item.pk])).content.decode()
    assert "Hints revealed" in detail
    assert detail.count("before the counted work: charged") == 2
    assert '<span class="stat-value" data-testid="cell-hints">2 (&minus;2)</span>' in detail
    data = client.get(f"/api/courses/{course.slug}/gradebook").json()
    cell = data["learners"][0]["cells"][0]
    assert (cell["hints_charged"], cell["hint_penalty"], cell["points"]) == (2, 2.0, 8.0)


def test_changing_the_price_in_the_admin_recounts_and_audits(
    client: Client, staff: User, instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, exercise = setup(instructor, learner, percent=0)
    hint_reveal(user=learner, exercise=exercise, level=1)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now() + timedelta(minutes=1), score=1.0)
    assert item_score(learner).points == 10.0
    item = assignment.items.get()
    local = timezone.localtime
    data = {
        "course": assignment.course_id,
        "title": assignment.title,
        "description": "",
        "opens_at_0": local(assignment.opens_at).strftime("%Y-%m-%d"),
        "opens_at_1": local(assignment.opens_at).strftime("%H:%M:%S"),
        "due_at_0": local(assignment.due_at).strftime("%Y-%m-%d"),
        "due_at_1": local(assignment.due_at).strftime("%H:%M:%S"),
        "late_policy": assignment.late_policy,
        "late_penalty_percent": assignment.late_penalty_percent,
        "counting": assignment.counting,
        "hint_penalty_percent": "20",
        "items-TOTAL_FORMS": 1,
        "items-INITIAL_FORMS": 1,
        "items-MIN_NUM_FORMS": 0,
        "items-MAX_NUM_FORMS": 1000,
        "items-0-id": item.pk,
        "items-0-assignment": assignment.pk,
        "items-0-order": item.order,
        "items-0-kind": item.kind,
        "items-0-exercise": exercise.pk,
        "items-0-lesson": "",
        "items-0-points": item.points,
    }
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:courses_assignment_change", args=[assignment.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert item_score(learner).points == 8.0
    change = GradeChange.objects.filter(learner=learner).latest("id")
    assert (change.cause, change.old_points, change.new_points, change.changed_by) == (
        GradeChangeCause.RECOMPUTE,
        10.0,
        8.0,
        staff,
    )
    assert change.reason == "Assignment changed: hint_penalty_percent; 1 hint(s) charged: -2 points"


def test_the_api_takes_the_price_and_refuses_a_bad_one(instructor: User) -> None:
    from tests.test_course_api import assignment_payload, bearer, post

    make_course(instructor)
    make_exercise()
    api = bearer(instructor)
    created = post(api, "/api/courses/ml-101/assignments", assignment_payload(hint_penalty_percent=12.5))
    assert created.status_code == 201, created.content
    assert created.json()["hint_penalty_percent"] == 12.5
    assert Assignment.objects.get().hint_penalty_percent == 12.5
    refused = post(api, "/api/courses/ml-101/assignments", assignment_payload(hint_penalty_percent=150))
    assert refused.status_code == 422 and "hint_penalty_percent" in json.dumps(refused.json())
    assert Assignment.objects.count() == 1
    schema = Client().get("/api/openapi.json").json()
    fields = schema["components"]["schemas"]["AssignmentIn"]["properties"]
    assert fields["hint_penalty_percent"]["maximum"] == 100
    assert "revealed before the counted submission" in fields["hint_penalty_percent"]["description"]


def test_the_service_refuses_a_price_out_of_range(instructor: User) -> None:
    from courses import services

    course = make_course(instructor)
    make_exercise()
    now = timezone.now()
    for bad in (-1.0, 101.0, float("nan")):
        with pytest.raises(services.CourseError, match="hint penalty must be 0-100"):
            services.assignment_create(
                course,
                by=instructor,
                title="Week 1",
                items=[services.ItemSpec("exercise", "linear-backward", 10)],
                opens_at=now,
                due_at=now + timedelta(days=1),
                hint_penalty_percent=bad,
            )
    assert not Assignment.objects.exists()
    assert not HintReveal.objects.exists()
