"""Through the real Celery worker: one learner's stall or crash decides nothing about the next ones.

The worker grades a submission that fills its /tmp with folders and one that builds a folder chain
thousands deep, then three correct submissions by another learner: each must be accepted, graded
once, and promptly (its own grading time, not the attack's aftermath).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from grader.models import Exercise, SubmissionStatus
from grader.verdicts import Verdict
from tests.submission_helpers import solution
from tests.test_celery_integration import (  # noqa: F401 - fixtures used by name
    Stack,
    exercise,
    graded,
    redis_server,
    stack,
    submit,
    wait_until,
)
from tests.test_sandbox_pristine import CRASH, STALL

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.sandbox, pytest.mark.django_db(transaction=True)]


def test_after_a_stall_and_a_crash_the_next_learners_are_accepted_promptly(
    stack: Stack,
    learner: User,
    exercise: Exercise,
) -> None:
    worker = stack.worker(concurrency=1)  # one pool process: every submission meets the same warm sandbox
    attacks = [submit(learner, STALL), submit(learner, CRASH)]
    other = User.objects.create_user(username="grace", password="x-unused-x")
    correct = [submit(other, solution()) for _ in range(3)]
    for submission in attacks:
        done = wait_until(lambda pk=submission.pk: graded(pk), what="the attack's verdict")
        assert done.verdict != Verdict.INTERNAL_ERROR, worker.log()[-2000:]
    for submission in correct:
        done = wait_until(lambda pk=submission.pk: graded(pk), what="a correct submission's verdict")
        assert done.status == SubmissionStatus.GRADED and done.verdict == Verdict.ACCEPTED, done.result
        assert (done.claim_count, done.graded_count) == (1, 1)
        seconds = (done.finished_at - done.started_at).total_seconds()
        assert seconds < 2.0, f"a correct submission after the attacks took {seconds:.2f} s to grade"
