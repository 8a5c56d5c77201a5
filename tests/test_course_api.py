"""The courses API (courses/api.py): create, read, join, assignments, gradebook, regrade; 4xx reasons; schema."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from courses.models import Assignment, Course, Enrollment, RegradeJob, SubmissionRegrade
from grader.auth import api_token_create
from lessons.models import Lesson
from quizzes.models import QuizQuestion
from tests.course_helpers import enroll, graded_submission, make_assignment, make_course, make_exercise, make_ta

pytestmark = pytest.mark.django_db


def bearer(user: User) -> Client:
    _, token = api_token_create(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def post(client: Client, path: str, data: object) -> Any:
    return client.post(path, data=json.dumps(data), content_type="application/json")


def assignment_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": "Week 1",
        "items": [{"kind": "exercise", "slug": "linear-backward", "points": 10}],
        "opens_at": "2027-03-01T09:00:00+01:00",
        "due_at": "2027-03-08T17:00:00+01:00",
        "late_policy": "penalty_per_day",
        "late_penalty_percent": 10,
    }
    payload.update(changes)
    return payload


def test_an_instructor_creates_a_course_and_a_learner_gets_403(instructor: User, learner: User) -> None:
    response = post(bearer(instructor), "/api/courses", {"slug": "ml-101", "title": "ML 101", "term": "Spring"})
    assert response.status_code == 201
    body = response.json()
    assert body["role"] == "owner"
    assert body["join_code"] == Course.objects.get().join_code
    refused = post(bearer(learner), "/api/courses", {"slug": "mine", "title": "Mine"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only staff and instructors may create courses."
    assert Course.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        ({"slug": "Bad Slug", "title": "x"}, 400, "The slug must be"),
        ({"slug": "ml-101", "title": "Again"}, 409, "exists already"),
        ({"slug": "ok", "title": ""}, 400, "The title must be"),
        ({"title": "no slug"}, 422, "slug"),
    ],
)
def test_bad_course_input_gets_a_one_line_reason_and_changes_nothing(
    instructor: User, payload: dict[str, str], status: int, reason: str
) -> None:
    make_course(instructor)
    response = post(bearer(instructor), "/api/courses", payload)
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert "\n" not in response.json()["detail"]
    assert Course.objects.count() == 1


def test_the_join_code_is_shown_only_to_staff_and_outsiders_get_404(
    instructor: User, learner: User, other_learner: User
) -> None:
    course = make_course(instructor)
    enroll(course, learner)
    as_staff = bearer(instructor).get(f"/api/courses/{course.slug}").json()
    as_learner = bearer(learner).get(f"/api/courses/{course.slug}").json()
    assert as_staff["join_code"] == course.join_code
    assert as_learner["join_code"] is None
    assert as_learner["enrolled"] is True
    assert bearer(other_learner).get(f"/api/courses/{course.slug}").status_code == 404
    assert bearer(other_learner).get("/api/courses/no-such").status_code == 404


def test_a_learner_joins_with_the_code_and_a_wrong_or_ended_course_is_refused(instructor: User, learner: User) -> None:
    course = make_course(instructor)
    client = bearer(learner)
    wrong = post(client, "/api/courses/join", {"code": "NOPE1234"})
    assert wrong.status_code == 404
    assert "No course has that join code" in wrong.json()["detail"]
    ok = post(client, "/api/courses/join", {"code": course.join_code})
    assert ok.status_code == 200
    assert ok.json()["course"] == course.slug
    assert post(client, "/api/courses/join", {"code": course.join_code}).status_code == 200
    assert Enrollment.objects.filter(user=learner).count() == 1
    ended = make_course(instructor, slug="old", ended_at=timezone.now() - timedelta(days=1))
    refused = post(bearer(User.objects.create_user("late")), "/api/courses/join", {"code": ended.join_code})
    assert refused.status_code == 409
    assert "has ended" in refused.json()["detail"]


def test_an_assignment_is_created_with_its_items_and_returns_its_id(instructor: User) -> None:
    course = make_course(instructor)
    make_exercise()
    lesson = Lesson.objects.create(slug="backprop", title="Backprop", question="Why?")
    QuizQuestion.objects.create(lesson=lesson, key="q1", kind="numeric", prompt_md="?", explanation_md=".", answer=1)
    payload = assignment_payload(
        items=[
            {"kind": "exercise", "slug": "linear-backward", "points": 10},
            {"kind": "quiz", "slug": "backprop", "points": 5, "questions": ["q1"]},
        ]
    )
    response = post(bearer(instructor), f"/api/courses/{course.slug}/assignments", payload)
    assert response.status_code == 201, response.json()
    assignment = Assignment.objects.get(pk=response.json()["id"])
    assert assignment.max_points() == 15
    assert assignment.due_at.isoformat() == "2027-03-08T16:00:00+00:00"
    assert list(assignment.items.get(kind="quiz").questions.values_list("key", flat=True)) == ["q1"]


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"due_at": "2027-02-01T00:00:00Z"}, 400, "The due time must be after the open time."),
        ({"items": [{"kind": "exercise", "slug": "nope", "points": 1}]}, 400, "Item 1: there is no exercise 'nope'."),
        ({"items": [{"kind": "quiz", "slug": "nope", "points": 1}]}, 400, "Item 1: there is no lesson 'nope'."),
        ({"items": []}, 400, "at least one item"),
        ({"items": [{"kind": "essay", "slug": "x", "points": 1}]}, 422, "kind"),
        ({"items": [{"kind": "exercise", "slug": "linear-backward", "points": -1}]}, 422, "points"),
        ({"opens_at": "2027-03-01T09:00:00"}, 400, "time zone"),
        ({"late_policy": "sometimes"}, 422, "late_policy"),
    ],
)
def test_bad_assignment_input_gets_a_one_line_reason_and_stores_nothing(
    instructor: User, changes: dict[str, Any], status: int, reason: str
) -> None:
    course = make_course(instructor)
    make_exercise()
    response = post(bearer(instructor), f"/api/courses/{course.slug}/assignments", assignment_payload(**changes))
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert not Assignment.objects.exists()


def test_assignments_of_an_ended_or_unknown_course_are_refused(instructor: User, learner: User) -> None:
    make_exercise()
    ended = make_course(instructor, slug="old", ended_at=timezone.now() - timedelta(days=1))
    assert post(bearer(instructor), f"/api/courses/{ended.slug}/assignments", assignment_payload()).status_code == 409
    assert post(bearer(instructor), "/api/courses/nope/assignments", assignment_payload()).status_code == 404
    course = make_course(instructor)
    enroll(course, learner)
    assert post(bearer(learner), f"/api/courses/{course.slug}/assignments", assignment_payload()).status_code == 403
    assert not Assignment.objects.exists()


def test_the_gradebook_json_and_csv_are_for_staff_only(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    course = make_course(instructor)
    enroll(course, learner)
    exercise = make_exercise()
    due = timezone.now() - timedelta(hours=1)
    make_assignment(course, [exercise], due_at=due)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=due + timedelta(minutes=5), score=1.0)
    book = bearer(instructor).get(f"/api/courses/{course.slug}/gradebook").json()
    assert book["learners"][0]["username"] == "ada"
    assert book["learners"][0]["cells"][0]["late"] is True
    assert book["learners"][0]["total"] == 10.0
    csv_response = bearer(instructor).get(f"/api/courses/{course.slug}/gradebook.csv")
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/csv")
    assert b"ada" in csv_response.content
    assert bearer(learner).get(f"/api/courses/{course.slug}/gradebook").status_code == 403
    assert bearer(learner).get(f"/api/courses/{course.slug}/gradebook.csv").status_code == 403
    ta_elsewhere = User.objects.create_user("tom")
    make_ta(make_course(User.objects.create_user("owen"), slug="other"), ta_elsewhere)
    assert bearer(ta_elsewhere).get(f"/api/courses/{course.slug}/gradebook").status_code == 404


def test_a_regrade_dry_run_answers_with_a_job_whose_progress_can_be_read(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from courses import regrades

    sent: list[list[int]] = []
    monkeypatch.setattr(regrades, "regrade_enqueue", lambda ids: sent.append(ids) or len(ids))
    course = make_course(instructor)
    enroll(course, learner)
    exercise = make_exercise()
    assignment = make_assignment(course, [exercise])
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now(), score=0.5)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            bearer(instructor), f"/api/courses/{course.slug}/assignments/{assignment.pk}/regrade", {"dry_run": True}
        )
    assert response.status_code == 202
    body = response.json()
    assert (body["mode"], body["status"], body["done"], body["total"]) == ("preview", "queued", 0, 1)
    assert len(sent) == 1 and len(sent[0]) == 1
    progress = bearer(instructor).get(body["url"])
    assert progress.json()["id"] == body["id"]
    again = post(
        bearer(instructor), f"/api/courses/{course.slug}/assignments/{assignment.pk}/regrade", {"dry_run": False}
    )
    assert again.status_code == 409
    assert RegradeJob.objects.count() == 1
    assert SubmissionRegrade.objects.count() == 1
    missing = post(bearer(instructor), f"/api/courses/{course.slug}/assignments/999/regrade", {"dry_run": True})
    assert missing.status_code == 404


def test_the_openapi_schema_lists_every_course_operation(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "post" in paths["/api/courses"]
    assert "get" in paths["/api/courses/{slug}"]
    assert "post" in paths["/api/courses/join"]
    assert "post" in paths["/api/courses/{slug}/assignments"]
    assert "get" in paths["/api/courses/{slug}/gradebook"]
    assert "get" in paths["/api/courses/{slug}/gradebook.csv"]
    assert "post" in paths["/api/courses/{slug}/assignments/{assignment_id}/regrade"]
    assert "get" in paths["/api/courses/{slug}/regrades/{job_id}"]
