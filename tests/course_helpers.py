"""Helpers for the course tests: a course with staff and learners, exercises, graded submissions at set times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from courses.models import (
    Assignment,
    AssignmentItem,
    Course,
    CourseRole,
    CourseStaff,
    Enrollment,
    EnrollmentSource,
    ItemKind,
    LatePolicy,
)
from grader import services as grader_services
from grader.models import Exercise, Submission, SubmissionStatus

DUE = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)


def make_exercise(slug: str = "linear-backward") -> Exercise:
    exercise, _ = Exercise.objects.get_or_create(
        slug=slug,
        defaults={
            "title": slug.replace("-", " ").title(),
            "function_name": "f",
            "signature": "f(x)",
            "statement_md": "Do it.",
            "starter_code": "def f(x):\n    return x\n",
            "reference_solution": "def f(x):\n    return x\n",
        },
    )
    return exercise


def make_course(owner: User, slug: str = "ml-101", **extra: Any) -> Course:
    course = Course.objects.create(slug=slug, title=slug.upper(), term="Spring 2027", created_by=owner, **extra)
    CourseStaff.objects.create(course=course, user=owner, role=CourseRole.OWNER)
    return course


def enroll(course: Course, *learners: User) -> None:
    for learner in learners:
        Enrollment.objects.get_or_create(course=course, user=learner, defaults={"source": EnrollmentSource.STAFF})


def make_assignment(
    course: Course,
    exercises: list[Exercise],
    *,
    due_at: datetime | None = None,
    late_policy: str = LatePolicy.NONE,
    **extra: Any,
) -> Assignment:
    due_at = due_at or timezone.now() + timedelta(days=1)
    assignment = Assignment.objects.create(
        course=course,
        title="Backprop",
        opens_at=due_at - timedelta(days=7),
        due_at=due_at,
        late_policy=late_policy,
        **extra,
    )
    for order, exercise in enumerate(exercises):
        AssignmentItem.objects.create(
            assignment=assignment, order=order, kind=ItemKind.EXERCISE, exercise=exercise, points=10
        )
    return assignment


def one_exercise_assignment(owner: User, learner: User, **rules: Any) -> tuple[Exercise, Assignment]:
    """The usual arrangement: `owner`'s course with `learner` enrolled and one assignment of linear-backward
    due at DUE (make_assignment's `rules`: counting, late policy, ...)."""
    course = make_course(owner)
    enroll(course, learner)
    exercise = make_exercise()
    return exercise, make_assignment(course, [exercise], due_at=DUE, **rules)


def graded_submission(
    learner: User, exercise: Exercise, *, at: datetime, score: float, verdict: str = ""
) -> Submission:
    """A submission made at `at`, graded through the grader's own claim and finish services."""
    previous = Submission.objects.filter(user=learner, exercise=exercise).count()
    submission = Submission.objects.create(
        user=learner, exercise=exercise, code="def f(x):\n    return x\n", attempt=previous + 1
    )
    Submission.objects.filter(pk=submission.pk).update(created_at=at)
    claimed = grader_services.submission_claim(submission.pk)
    assert claimed is not None
    verdict = verdict or ("accepted" if score == 1.0 else "wrong_answer")
    assert grader_services.submission_finish(
        submission.pk, claim=claimed.claim_count, result={"verdict": verdict, "score": score, "checks": []}
    )
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.GRADED
    return submission


def make_ta(course: Course, user: User) -> CourseStaff:
    return CourseStaff.objects.create(course=course, user=user, role=CourseRole.TEACHING_ASSISTANT)
