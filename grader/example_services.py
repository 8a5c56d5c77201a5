""" "Run on an example" requests: create (validated, rate limited, enqueued) and execute (in the worker).

The run happens in the Celery worker, where the engine keeps its warm sandbox, exactly like
a grading; the page polls the row (grader/views.py `example_run_progress`).
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from grader.models import ExampleRun, ExampleRunStatus, Exercise
from grader.services import RATE_WINDOW_S, RateLimited, _validated_source
from gradlab.tasks_send import task_send

logger = logging.getLogger(__name__)

RUN_TASK_NAME = "grader.tasks.run_example"


def _check_rate(user_id: int) -> None:
    limit = settings.GRADER_EXAMPLE_RUNS_PER_MINUTE
    now = timezone.now()
    recent = list(
        ExampleRun.objects.filter(user_id=user_id, created_at__gt=now - timedelta(seconds=RATE_WINDOW_S))
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return
    retry_after = max(1, math.ceil((recent[-1] + timedelta(seconds=RATE_WINDOW_S) - now).total_seconds()))
    raise RateLimited(
        f"You can run examples {limit} times per minute. Try again in {retry_after} s.", retry_after_s=retry_after
    )


def example_run_create(*, user: AbstractBaseUser, exercise: Exercise, code: str | bytes) -> ExampleRun:
    """Store a QUEUED run of `code` and send its task once committed.

    Raises the submission's SubmissionRejected subclasses (nothing stored) for code that is
    not UTF-8, too large or empty, and RateLimited beyond GRADER_EXAMPLE_RUNS_PER_MINUTE.
    """
    source = _validated_source(code)
    _check_rate(user.pk)
    with transaction.atomic():
        run = ExampleRun.objects.create(user_id=user.pk, exercise=exercise, code=source)
        transaction.on_commit(lambda: _enqueue(run))
    return run


def _enqueue(run: ExampleRun) -> None:
    if not task_send(RUN_TASK_NAME, run.pk):
        ExampleRun.objects.filter(pk=run.pk, status=ExampleRunStatus.QUEUED).update(
            status=ExampleRunStatus.FAILED,
            result={"message": "The grading service is unreachable right now; try again in a moment."},
            finished_at=timezone.now(),
        )


def example_run_execute(run_id: int) -> bool:
    """Run a QUEUED example in the sandbox and store the report; False if it was not QUEUED (run already)."""
    from grader.engine import Engine
    from grader.example_run import run_example
    from grader.sandbox import SandboxUnavailable
    from grader.spec import ExerciseSpec

    claimed = ExampleRun.objects.filter(pk=run_id, status=ExampleRunStatus.QUEUED).update(
        status=ExampleRunStatus.RUNNING
    )
    if not claimed:
        return False
    run = ExampleRun.objects.select_related("exercise", "exercise__lesson").get(pk=run_id)
    status, report = ExampleRunStatus.DONE, {}
    try:
        report = run_example(Engine.get(), ExerciseSpec.from_model(run.exercise), run.code)
    except SandboxUnavailable:
        logger.exception("example run %s: the sandbox is unavailable", run_id)
        status, report = ExampleRunStatus.FAILED, {"message": "The sandbox is unavailable right now; try again later."}
    except Exception:
        logger.exception("example run %s failed inside the grader", run_id)
        status, report = ExampleRunStatus.FAILED, {"message": "The example could not be run; it was logged."}
    ExampleRun.objects.filter(pk=run_id).update(status=status, result=report, finished_at=timezone.now())
    return True
