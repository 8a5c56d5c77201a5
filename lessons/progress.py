"""Reads behind a learner's progress page: lessons read, quiz scores, exercises and submissions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import User
from django.urls import reverse

from grader.models import Exercise, Submission
from grader.verdicts import Verdict
from lessons.models import Lesson, LessonRead
from quizzes.services import QuizScore, quiz_scores_for

SUBMISSIONS_SHOWN_PER_EXERCISE = 10


def submission_url(submission_id: int) -> str:
    """The page of one submission."""
    return reverse("submission_detail", args=[submission_id])


@dataclass(frozen=True)
class SubmissionLink:
    id: int
    url: str
    created_at: datetime
    verdict: str
    status: str
    score: float | None

    @property
    def verdict_label(self) -> str:
        try:
            return Verdict(self.verdict).label
        except ValueError:
            return self.status.capitalize()


@dataclass
class ExerciseProgress:
    exercise: Exercise
    attempts: int = 0
    accepted: bool = False
    first_accepted: SubmissionLink | None = None
    shown: list[SubmissionLink] = field(default_factory=list)  # newest first, at most SUBMISSIONS_SHOWN_PER_EXERCISE

    @property
    def hidden(self) -> int:
        return self.attempts - len(self.shown)


@dataclass
class LessonRow:
    lesson: Lesson
    read_at: datetime | None
    quiz: QuizScore | None


@dataclass
class Progress:
    lessons: list[LessonRow]
    exercises: list[ExerciseProgress]

    @property
    def lessons_read(self) -> int:
        return sum(1 for row in self.lessons if row.read_at)

    @property
    def exercises_attempted(self) -> list[ExerciseProgress]:
        return [row for row in self.exercises if row.attempts]

    @property
    def exercises_accepted(self) -> int:
        return sum(1 for row in self.exercises if row.accepted)


def learner_progress(user: User) -> Progress:
    """Everything the progress page shows for `user`, in a fixed number of queries (six).

    Only the learner's own rows are read; submissions are read without their code
    or result.
    """
    lessons = list(Lesson.objects.only("id", "slug", "title", "order", "difficulty"))
    reads = dict(LessonRead.objects.filter(user_id=user.pk).values_list("lesson_id", "first_read_at"))
    scores = quiz_scores_for(user)
    rows = [LessonRow(lesson, reads.get(lesson.pk), scores.get(lesson.pk)) for lesson in lessons]

    # The order of /exercises/ (grader.selectors.exercise_list): by lesson, then the exercise's order.
    exercises = {
        exercise.pk: ExerciseProgress(exercise)
        for exercise in Exercise.objects.all()
        .select_related("lesson")
        .only("id", "slug", "title", "order", "lesson__slug", "lesson__title", "lesson__order")
        .order_by("lesson__order", "lesson__slug", "order", "slug")
    }
    submissions = (
        Submission.objects.filter(user_id=user.pk)
        .only("id", "exercise_id", "created_at", "verdict", "status", "score")
        .order_by("-created_at", "-id")
    )
    for submission in submissions:
        entry = exercises.get(submission.exercise_id)
        if entry is None:
            continue
        link = SubmissionLink(
            submission.pk,
            submission_url(submission.pk),
            submission.created_at,
            submission.verdict,
            submission.status,
            submission.score,
        )
        entry.attempts += 1
        if len(entry.shown) < SUBMISSIONS_SHOWN_PER_EXERCISE:
            entry.shown.append(link)
        if submission.verdict == Verdict.ACCEPTED.value:
            entry.accepted = True
            entry.first_accepted = link  # newest first: the last one seen is the first accepted
    return Progress(lessons=rows, exercises=list(exercises.values()))
