"""Send a task to the grading queue by name, and say whether the broker took it.

Every app queues its work the same way: by task name (the tasks modules import the services,
not the other way round), on settings.GRADING_QUEUE, with one quick publish retry. When the
broker is unreachable the caller's row stays as it is and that app's sweeper sends it later,
so a refused send is logged and reported, never raised.
"""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger(__name__)

PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.2}


def task_send(name: str, object_id: int) -> bool:
    """Queue task `name` for the row `object_id`; False (logged) if the broker is unreachable."""
    from celery import current_app
    from kombu.exceptions import OperationalError

    try:
        current_app.send_task(
            name,
            args=[object_id],
            queue=settings.GRADING_QUEUE,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
    except (OperationalError, OSError) as error:
        logger.warning("task %s for %s not queued: the broker is unreachable (%s)", name, object_id, error)
        return False
    return True
