"""Reads behind a learner's progress page: lessons read, quiz scores, exercises and submissions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.contrib.auth.models import User
from django.urls import NoReverseMatch, reverse

from grader.models import Exercise, Submission
from grader.verdicts import Verdict
from quizzes.models import Lesson, LessonRead
from quizzes.quiz_services import QuizScore, quiz_scores_for

# Names the submission page may have; the first that resolves is used.
SUBMISSION_URL_NAMES = ("submission_detail", "grader:submission_detail", "submission")
SUBMISSIONS_SHOWN_PER_EXERCISE = 10


@lru_cache(maxsize=1)
def _submission_url_name() -> str | None:
    for name in SUBMISSION_URL_NAMES:
        try:
            reverse(name, args=[1])
        except NoReverseMatch:
            continue
        return name
    return None


def submission_url(submission_id: int) -> str:
    """The page of one submission (`/submissions/<id>/` until the grader names its route)."""
    name = _submission_url_name()
    return reverse(name, args=[submission_id]) if name else f"/submissions/{submission_id}/"


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

    exercises = {
        exercise.pk: ExerciseProgress(exercise)
        for exercise in Exercise.objects.select_related("lesson").only(
            "id", "slug", "title", "order", "lesson__slug", "lesson__title"
        )
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
