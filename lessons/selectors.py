"""Reads of a learner's progress, for the home page and the lesson page."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count

from grader.models import Exercise, Submission
from grader.verdicts import Verdict
from lessons.models import LessonRead
from quizzes.services import QuizScore, quiz_scores_for


@dataclass
class LessonProgress:
    """What one learner has done in one lesson.

    `quiz` is None when the lesson has no quiz; `exercises_total` counts the lesson's
    exercises and `exercises_accepted` those with at least one accepted submission.
    """

    read: bool = False
    quiz: QuizScore | None = None
    exercises_accepted: int = 0
    exercises_total: int = 0


def lesson_progress_for(user: User | AnonymousUser) -> dict[int, LessonProgress]:
    """LessonProgress per lesson id, for every lesson with a read, a quiz or an exercise.

    A guest gets the lessons' quiz and exercise totals with nothing done. The number of
    queries does not grow with the number of lessons (five for a learner).
    """
    progress: dict[int, LessonProgress] = {}

    def entry(lesson_id: int) -> LessonProgress:
        return progress.setdefault(lesson_id, LessonProgress())

    for lesson_id, score in quiz_scores_for(user).items():
        entry(lesson_id).quiz = score
    exercise_totals = (
        Exercise.objects.filter(lesson__isnull=False).values_list("lesson_id").annotate(count=Count("id")).order_by()
    )
    for lesson_id, count in exercise_totals:
        entry(lesson_id).exercises_total = count
    if not user.is_authenticated:
        return progress
    for lesson_id in LessonRead.objects.filter(user_id=user.pk).values_list("lesson_id", flat=True):
        entry(lesson_id).read = True
    accepted = (
        Submission.objects.filter(user_id=user.pk, verdict=Verdict.ACCEPTED.value, exercise__lesson__isnull=False)
        .values_list("exercise__lesson_id")
        .annotate(count=Count("exercise_id", distinct=True))
        .order_by()
    )
    for lesson_id, count in accepted:
        entry(lesson_id).exercises_accepted = count
    return progress
