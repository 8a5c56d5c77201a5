"""Validation of an exercise saved in the admin: requested in the web process, run by a worker.

`exercise_validation_request` marks the exercise `pending` and sends
`dashboard.tasks.validate_exercise` once the transaction commits;
`exercise_validation_run` (in the worker) grades the reference solution and every
known-wrong variant in the sandbox through `grader.validation.exercise_validate`,
which stores `validation_status`, `validation_report` and `validated_at`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from grader.models import Exercise

logger = logging.getLogger(__name__)

PENDING = "pending"
NOT_QUEUED = "not_queued"
ERROR = "error"


def _store(exercise_id: int, status: str, message: str) -> None:
    Exercise.objects.filter(pk=exercise_id).update(
        validation_status=status,
        validation_report={"ok": False, "message": message, "outcomes": []},
        validated_at=timezone.now(),
    )


def exercise_validation_request(exercise: Exercise) -> None:
    """Mark `exercise` pending and enqueue its validation after the current transaction commits.

    If the broker cannot take the message, the status says so (`not_queued`) instead
    of staying pending forever.
    """
    Exercise.objects.filter(pk=exercise.pk).update(validation_status=PENDING, validation_report={})
    exercise.validation_status, exercise.validation_report = PENDING, {}

    def send() -> None:
        from dashboard.tasks import validate_exercise

        try:
            validate_exercise.apply_async(args=(exercise.pk,), retry=False)
        except Exception as error:  # kombu raises several kinds when Redis is down
            logger.warning("could not enqueue the validation of exercise %s: %s", exercise.pk, error)
            _store(exercise.pk, NOT_QUEUED, f"the validation could not be queued ({type(error).__name__}); save again")

    transaction.on_commit(send)


def exercise_validation_run(exercise_id: int) -> dict[str, Any]:
    """Validate one exercise by id (the worker side); returns a summary for the worker's log."""
    from grader.validation import exercise_validate

    exercise = Exercise.objects.filter(pk=exercise_id).first()
    if exercise is None:
        return {"exercise": exercise_id, "missing": True}
    try:
        report = exercise_validate(exercise)
    except Exception as error:
        # The grader itself failed (sandbox unavailable...): say so on the admin page.
        logger.exception("validation of exercise %s failed", exercise_id)
        _store(exercise_id, ERROR, f"the grader could not run: {type(error).__name__}: {error}")
        return {"exercise": exercise_id, "error": str(error)}
    return {"exercise": exercise_id, "ok": report.ok}
