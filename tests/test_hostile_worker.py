"""Forged frames and the amplification case through the real path: submit, Redis, a Celery worker.

tests/test_hostile_frames.py shows the same attacks through one warm engine; here they are
submitted back to back by a learner, graded by a real prefork worker, and stored: each is the
learner's own verdict, graded once on its first claim (an internal error would have been
released and retried), and the correct submission after them is accepted.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from grader.models import Exercise, SubmissionStatus
from grader.verdicts import Verdict
from tests.test_celery_integration import (  # noqa: F401 - exercise, redis_server and stack are fixtures
    Stack,
    exercise,
    graded,
    redis_server,
    stack,
    submit,
    wait_until,
)
from tests.test_hostile_frames import BOOL_DX, CORRECT, FORGED, FORGER, TRUNCATED

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ATTACKS = [
    *((name, FORGER.format(frame=data, after="while True: pass"), Verdict.RUNTIME_ERROR) for name, data in FORGED[:8]),
    *((name, FORGER.format(frame=data, after="os._exit(0)"), Verdict.RUNTIME_ERROR) for name, data in TRUNCATED),
    ("a 63 MiB bool array as dx", BOOL_DX, Verdict.WRONG_ANSWER),
]


def test_forged_frames_and_a_hoarded_reply_through_the_worker_are_the_learners_own_verdicts(
    stack: Stack, learner: User, exercise: Exercise
) -> None:
    worker = stack.worker(concurrency=1)
    submitted = [(name, submit(learner, source).pk, verdict) for name, source, verdict in ATTACKS]
    correct = submit(learner, CORRECT).pk
    for name, submission_id, verdict in submitted:
        submission = wait_until(lambda submission_id=submission_id: graded(submission_id), what=name)
        assert submission.status == SubmissionStatus.GRADED, (name, worker.log()[-2000:])
        assert submission.verdict == verdict, (name, submission.result.get("feedback"))
        assert (submission.claim_count, submission.graded_count) == (1, 1), name
        if verdict == Verdict.RUNTIME_ERROR:
            assert "interfered with the grader's channel" in submission.grade_result().feedback, name
    last = wait_until(lambda: graded(correct), what="the correct submission")
    assert last.verdict == Verdict.ACCEPTED, last.result.get("feedback")
    assert "failed inside the grader" not in worker.log()
