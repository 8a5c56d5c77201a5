"""Celery tasks of the courses app: regrading one submission (courses.regrades.submission_regrade_run)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from courses import regrades


@shared_task(
    name=regrades.REGRADE_TASK_NAME,
    queue=settings.GRADING_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GRADING_SOFT_TIME_LIMIT_S,
    time_limit=settings.GRADING_HARD_TIME_LIMIT_S,
    ignore_result=True,
)
def regrade_submission(regrade_id: int) -> bool:
    """Grade one SubmissionRegrade again; a redelivered message finds it claimed and does nothing."""
    return regrades.submission_regrade_run(regrade_id)


@shared_task(
    name="courses.tasks.sweep_regrades",
    queue=settings.GRADING_QUEUE,
    soft_time_limit=30,
    time_limit=45,
    ignore_result=True,
)
def sweep_regrades() -> dict[str, list[int]]:
    """Re-send regrades whose message or worker was lost (celery beat, every GRADER_SWEEP_INTERVAL_S)."""
    return regrades.regrade_sweep()
