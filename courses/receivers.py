"""Recount assignment scores when a learner's work is graded (a submission or a quiz answer) or a hint is revealed."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from courses import services
from courses.models import GradeChangeCause
from grader.models import HintReveal
from grader.signals import submission_graded
from quizzes.models import QuizAttempt

logger = logging.getLogger(__name__)


@receiver(submission_graded, dispatch_uid="courses.submission_graded")
def recount_after_submission(sender: Any, submission_id: int, user_id: int, exercise_id: int, **kwargs: Any) -> None:
    services.scores_after_work(learner_id=user_id, cause=GradeChangeCause.SUBMISSION, exercise_id=exercise_id)


@receiver(post_save, sender=QuizAttempt, dispatch_uid="courses.quiz_attempt_saved")
def recount_after_quiz_answer(sender: Any, instance: QuizAttempt, created: bool, **kwargs: Any) -> None:
    if created:
        services.scores_after_work(
            learner_id=instance.user_id, cause=GradeChangeCause.QUIZ_ANSWER, question_id=instance.question_id
        )


@receiver(post_save, sender=HintReveal, dispatch_uid="courses.hint_revealed")
def recount_after_hint(sender: Any, instance: HintReveal, created: bool, **kwargs: Any) -> None:
    # Only hints revealed before the counting submission are charged, so a reveal changes the points
    # only through later work; the recount keeps the hints the staff see (ItemScore.hints_seen) current.
    if created:
        services.scores_after_work(
            learner_id=instance.user_id, cause=GradeChangeCause.HINT, exercise_id=instance.exercise_id
        )
