"""Celery tasks of the dashboard app (authoring): validation of an exercise saved in the admin."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from dashboard.authoring import exercise_validation_run


@shared_task(
    name="dashboard.tasks.validate_exercise",
    # The workers consume the grading queue only; a validation is a handful of gradings.
    queue=settings.GRADING_QUEUE,
    soft_time_limit=settings.GRADING_SOFT_TIME_LIMIT_S,
    time_limit=settings.GRADING_HARD_TIME_LIMIT_S,
    ignore_result=True,
)
def validate_exercise(exercise_id: int) -> dict[str, Any]:
    """Grade the exercise's reference solution and known-wrong variants; store the outcome on the row."""
    return exercise_validation_run(exercise_id)
