"""Celery tasks of LTI: send one score to an LMS (with capped exponential backoff), and the sweep.

They run on the grading queue (the one the workers listen to). Each send is guarded
by a claim on its outbox row (lti.services.score_send), so a redelivered message or a
retry that races the sweeper sends nothing twice.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from lti import services
from lti.tool_config import launch_data_sweep


@shared_task(
    bind=True,
    name=services.SEND_SCORE_TASK_NAME,
    queue=settings.GRADING_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=75,
    max_retries=settings.LTI_SCORE_MAX_RETRIES,
    ignore_result=True,
)
def send_score(self: Task, outbox_id: int) -> dict[str, Any]:
    """Send outbox row `outbox_id`; retry later (the row says when) while the LMS is unavailable."""
    outcome = services.score_send(outbox_id)
    if outcome.retry_in_s is not None and not self.request.is_eager:
        # After max_retries the row stays PENDING and the sweeper keeps sending it.
        raise self.retry(countdown=outcome.retry_in_s)
    return {"outbox": outbox_id, "sent": outcome.sent, "note": outcome.note[:200]}


@shared_task(name="lti.tasks.sweep_outbox", queue=settings.GRADING_QUEUE, soft_time_limit=60, time_limit=75)
def sweep_outbox() -> dict[str, Any]:
    """Re-send due scores whose message was lost; write rows a failed listener missed; drop old launch data."""
    written = services.outbox_reconcile()
    resent = services.outbox_sweep()
    return {"resent": resent, "reconciled": written, "launch_data_deleted": launch_data_sweep()}
