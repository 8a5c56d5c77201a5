"""Celery tasks of the grading queue. They take an id and call a service (grader/services.py, grader/validation.py).

Delivery guarantees come from the settings (acks_late, reject_on_worker_lost,
prefetch 1, a visibility timeout above the hard time limit) and are repeated on the
task so they hold whatever the app's defaults become. A message delivered twice is
harmless: `submission_claim` lets one through.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import task_postrun, worker_init, worker_process_init
from django.conf import settings

from grader import heartbeat, services, validation

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (1, 5, 15)


@shared_task(
    bind=True,
    name=services.GRADE_TASK_NAME,
    queue=settings.GRADING_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GRADING_SOFT_TIME_LIMIT_S,
    time_limit=settings.GRADING_HARD_TIME_LIMIT_S,
    # The real cap is GRADER_MAX_CLAIMS, counted on the row (services._interrupt).
    max_retries=None,
    ignore_result=True,
)
def grade_submission(self: Task, submission_id: int) -> dict[str, Any]:
    """Grade one submission; returns what happened (for the worker's log)."""
    try:
        outcome = services.submission_grade(submission_id)
    except services.GradingInterrupted as error:
        if not error.released:
            return {"submission": submission_id, "graded": False, "failed": True}
        delay = RETRY_DELAYS_S[min(self.request.retries, len(RETRY_DELAYS_S) - 1)]
        # The row is QUEUED again; if the retry message is lost too, the sweeper sends another.
        raise self.retry(countdown=delay, exc=error) from error
    return {"submission": submission_id, "graded": outcome.graded, "verdict": outcome.verdict}


@shared_task(
    name="grader.tasks.sweep_submissions",
    queue=settings.GRADING_QUEUE,
    soft_time_limit=30,
    time_limit=45,
    ignore_result=True,
)
def sweep_submissions() -> dict[str, list[int]]:
    """Re-send submissions whose message was lost (celery beat runs this every GRADER_SWEEP_INTERVAL_S)."""
    return services.submission_sweep().to_json()


@shared_task(
    name="grader.tasks.validate_exercise",
    # The workers consume the grading queue only; a validation is a handful of gradings.
    queue=settings.GRADING_QUEUE,
    soft_time_limit=settings.GRADING_SOFT_TIME_LIMIT_S,
    time_limit=settings.GRADING_HARD_TIME_LIMIT_S,
    ignore_result=True,
)
def validate_exercise(exercise_id: int) -> dict[str, Any]:
    """Grade an exercise's reference solution and known-wrong variants (saved in the admin); store the outcome."""
    return validation.exercise_validation_run(exercise_id)


# Time a new pool process may take to start (Celery's default, 4 s, is too short for a
# process that starts its sandbox while the others do the same on a busy machine).
PROCESS_START_TIMEOUT_S = 30.0


@worker_init.connect
def preload_engine(sender: Any = None, **kwargs: Any) -> None:
    """Import the engine (NumPy, PyTorch) once in the worker's main process, so forked pool processes share it."""
    app = getattr(sender, "app", None)
    if app is not None:
        app.conf.worker_proc_alive_timeout = max(app.conf.worker_proc_alive_timeout or 0, PROCESS_START_TIMEOUT_S)
    try:
        import grader.engine  # noqa: F401
    except Exception:
        logger.exception("could not import the grading engine")


@worker_process_init.connect
def warm_engine(**kwargs: Any) -> None:
    """Start this pool process's engine (and its warm sandbox) before the first task arrives."""
    try:
        from grader.engine import Engine

        Engine.get()
    except Exception:
        # The first task will try again and report the error on its submission.
        logger.exception("could not warm the grading engine")
    heartbeat.start_heartbeat()


@task_postrun.connect(weak=False)
def beat_after_task(**kwargs: Any) -> None:
    """Report this process's isolation and restarts for /metrics as soon as a task ends."""
    heartbeat.worker_heartbeat()


@shared_task(
    name="grader.tasks.run_example",
    queue=settings.GRADING_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GRADING_SOFT_TIME_LIMIT_S,
    time_limit=settings.GRADING_HARD_TIME_LIMIT_S,
    ignore_result=True,
)
def run_example(run_id: int) -> dict[str, Any]:
    """Run one "Run on an example" request (grader/example_services.py)."""
    from grader.example_services import example_run_execute

    return {"example_run": run_id, "ran": example_run_execute(run_id)}
