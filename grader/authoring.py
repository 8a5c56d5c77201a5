"""What saving an exercise in the admin triggers: its validation, requested here and run by a worker.

`exercise_validation_request` marks the exercise `pending` and sends
`grader.tasks.validate_exercise` once the transaction commits; the worker runs
`grader.validation.exercise_validation_run`, which grades the reference solution and every
known-wrong variant in the sandbox and stores `validation_status`, `validation_report`
and `validated_at`.
"""

from __future__ import annotations

import logging

from django.db import transaction

from grader.models import Exercise, ValidationStatus
from grader.tasks import validate_exercise
from grader.validation import exercise_validation_fail

logger = logging.getLogger(__name__)


def exercise_validation_request(exercise: Exercise) -> None:
    """Mark `exercise` pending and enqueue its validation after the current transaction commits.

    If the broker cannot take the message, the status says so (`not_queued`) instead
    of staying pending forever.
    """
    Exercise.objects.filter(pk=exercise.pk).update(validation_status=ValidationStatus.PENDING, validation_report={})
    exercise.validation_status, exercise.validation_report = ValidationStatus.PENDING, {}

    def send() -> None:
        try:
            validate_exercise.apply_async(args=(exercise.pk,), retry=False)
        except Exception as error:  # kombu raises several kinds when Redis is down
            logger.warning("could not enqueue the validation of exercise %s: %s", exercise.pk, error)
            exercise_validation_fail(
                exercise.pk,
                ValidationStatus.NOT_QUEUED,
                f"the validation could not be queued ({type(error).__name__}); save again",
            )

    transaction.on_commit(send)
