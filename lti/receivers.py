"""Listeners: a learner's assignment total changed -> its score goes to the LMS outbox.

The outbox row is written by `post_save` of AssignmentScore, inside the transaction
that changes the total, so the score change and its way to the LMS commit together.
`assignment_score_changed` (sent by courses after commit) writes it too: the row's key
makes the second write a no-op, and it covers a total changed without `save()`.
A failing listener never undoes the grading: it runs in a savepoint, is logged, and
`outbox_reconcile` (the periodic sweep) writes the row later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from courses.models import AssignmentScore
from courses.signals import assignment_score_changed

logger = logging.getLogger(__name__)


def _write(assignment_id: int, learner_id: int) -> None:
    from lti.services import outbox_write_for

    try:
        with transaction.atomic():
            outbox_write_for(assignment_id, learner_id)
    except Exception:
        logger.exception("could not write the LMS score of learner %s on assignment %s", learner_id, assignment_id)


@receiver(post_save, sender=AssignmentScore, dispatch_uid="lti-outbox-on-save")
def write_score_on_save(sender: Any, instance: AssignmentScore, **kwargs: Any) -> None:
    _write(instance.assignment_id, instance.learner_id)


@receiver(assignment_score_changed, dispatch_uid="lti-outbox-on-change")
def write_score_on_change(sender: Any, assignment: Any, learner: Any, **kwargs: Any) -> None:
    _write(assignment.pk, learner.pk)
