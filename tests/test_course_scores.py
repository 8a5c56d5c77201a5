"""What counts on an assignment: best or last, late policies, extensions, quizzes, overrides and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from courses import services
from courses.models import (
    AssignmentItem,
    AssignmentScore,
    Counting,
    Extension,
    GradeChange,
    GradeChangeCause,
    ItemKind,
    ItemScore,
    LatePolicy,
)
from lessons.models import Lesson
from quizzes.models import QuizAttempt, QuizQuestion
from tests.course_helpers import (
    DUE,
    enroll,
    graded_submission,
    make_assignment,
    make_course,
    make_exercise,
    one_exercise_assignment,
)

pytestmark = pytest.mark.django_db


def _score(assignment: Any, learner: User) -> float:
    return AssignmentScore.objects.get(assignment=assignment, learner=learner).score


def test_a_graded_submission_counts_and_announces_the_new_total(
    instructor: User, learner: User, announcements: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    course = make_course(instructor)
    enroll(course, learner)
    exercise = make_exercise()
    assignment = make_assignment(course, [exercise, make_exercise("relu-backward")], due_at=DUE)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE - timedelta(hours=1), score=0.5)
    assert _score(assignment, learner) == 5.0
    assert announcements[-1]["score"] == 5.0
    assert announcements[-1]["max_score"] == 20.0
    assert announcements[-1]["learner"] == learner
    assert announcements[-1]["assignment"] == assignment
    change = GradeChange.objects.get(learner=learner)
    assert (change.cause, change.old_points, change.new_points) == (GradeChangeCause.SUBMISSION, None, 5.0)


def test_best_counting_keeps_the_highest_score_before_the_deadline(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, _ = one_exercise_assignment(instructor, learner)
    with django_capture_on_commit_callbacks(execute=True):
        best = graded_submission(learner, exercise, at=DUE - timedelta(hours=3), score=1.0)
        graded_submission(learner, exercise, at=DUE - timedelta(hours=1), score=0.25)
    row = ItemScore.objects.get(learner=learner)
    assert (row.points, row.submission_id, row.is_late, row.attempts) == (10.0, best.pk, False, 2)


def test_last_counting_keeps_the_most_recent_submission(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, assignment = one_exercise_assignment(instructor, learner, counting=Counting.LAST)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE - timedelta(hours=3), score=1.0)
        last = graded_submission(learner, exercise, at=DUE - timedelta(hours=1), score=0.25)
    assert ItemScore.objects.get(learner=learner).submission_id == last.pk
    assert _score(assignment, learner) == 2.5


def test_hard_close_ignores_work_after_the_due_time(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, assignment = one_exercise_assignment(instructor, learner, late_policy=LatePolicy.HARD_CLOSE)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE - timedelta(hours=1), score=0.5)
        graded_submission(learner, exercise, at=DUE + timedelta(minutes=1), score=1.0)
    assert _score(assignment, learner) == 5.0
    assert not ItemScore.objects.get(learner=learner).is_late


def test_a_penalty_per_day_takes_points_per_started_day_and_flags_late(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, assignment = one_exercise_assignment(
        instructor, learner, late_policy=LatePolicy.PENALTY_PER_DAY, late_penalty_percent=20
    )
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE + timedelta(days=1, minutes=1), score=1.0)
    row = ItemScore.objects.get(learner=learner)
    assert (row.points, row.is_late, row.late_days) == (6.0, True, 2)
    assert AssignmentScore.objects.get(assignment=assignment, learner=learner).is_late


def test_an_extension_moves_the_learners_due_time(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, assignment = one_exercise_assignment(instructor, learner, late_policy=LatePolicy.HARD_CLOSE)
    Extension.objects.create(assignment=assignment, learner=learner, due_at=DUE + timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE + timedelta(days=1), score=1.0)
    assert _score(assignment, learner) == 10.0


def test_work_of_someone_not_enrolled_counts_nowhere(
    instructor: User, learner: User, other_learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, _ = one_exercise_assignment(instructor, learner)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(other_learner, exercise, at=DUE - timedelta(hours=1), score=1.0)
    assert not AssignmentScore.objects.filter(learner=other_learner).exists()


def test_a_quiz_answer_counts_its_share_of_the_chosen_questions(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    course = make_course(instructor)
    enroll(course, learner)
    lesson = Lesson.objects.create(slug="backprop", title="Backprop", question="Why?")
    questions = [
        QuizQuestion.objects.create(
            lesson=lesson, key=f"q{n}", order=n, kind="numeric", prompt_md="?", explanation_md=".", answer=1
        )
        for n in range(3)
    ]
    assignment = make_assignment(course, [])
    item = AssignmentItem.objects.create(assignment=assignment, kind=ItemKind.QUIZ, lesson=lesson, points=4)
    item.questions.set(questions[:2])
    with django_capture_on_commit_callbacks(execute=True):
        QuizAttempt.objects.create(user=learner, question=questions[0], answer_text="1", score=1.0, is_correct=True)
        QuizAttempt.objects.create(user=learner, question=questions[2], answer_text="1", score=1.0, is_correct=True)
    assert _score(assignment, learner) == 2.0


def test_an_override_needs_a_reason_and_is_logged_with_old_and_new(
    instructor: User, learner: User, django_capture_on_commit_callbacks: Any
) -> None:
    exercise, assignment = one_exercise_assignment(instructor, learner)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE - timedelta(hours=1), score=0.5)
    item = assignment.items.get()
    with pytest.raises(services.CourseError, match="reason"):
        services.item_score_override(item, learner.pk, points=9, reason=" ", by_id=instructor.pk)
    with pytest.raises(services.CourseError, match="between 0 and 10"):
        services.item_score_override(item, learner.pk, points=11, reason="typo", by_id=instructor.pk)
    assert _score(assignment, learner) == 5.0
    services.item_score_override(item, learner.pk, points=9, reason="Grader bug on case 3", by_id=instructor.pk)
    assert _score(assignment, learner) == 9.0
    change = GradeChange.objects.filter(cause=GradeChangeCause.OVERRIDE).get()
    assert (change.changed_by, change.old_points, change.new_points, change.reason) == (
        instructor,
        5.0,
        9.0,
        "Grader bug on case 3",
    )
    # New work does not undo an override; clearing it brings the computed points back.
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=DUE - timedelta(minutes=5), score=0.75)
    assert _score(assignment, learner) == 9.0
    services.item_score_override(item, learner.pk, points=None, reason="Fixed upstream", by_id=instructor.pk)
    assert _score(assignment, learner) == 7.5
