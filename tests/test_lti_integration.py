"""A score travels to the simulated LMS through the real Redis and a real Celery worker,
while the LMS is down and then back: retried with backoff, delivered exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from courses.models import Assignment, AssignmentItem, AssignmentScore, Course
from lti.keys import jwks
from lti.models import Deployment, LinkTarget, LtiIdentity, OutboxStatus, Platform, ScoreOutbox
from tests.lti_platform import SimulatedPlatform
from tests.submission_helpers import exercise_from_folder
from tests.test_celery_integration import Stack, redis_server, stack, wait_until  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lms() -> Iterator[SimulatedPlatform]:
    cache.clear()
    platform = SimulatedPlatform(tool_jwks=jwks()).start()
    yield platform
    platform.stop()


def test_a_score_sent_while_the_lms_is_down_arrives_once_it_is_back(stack: Stack, lms: SimulatedPlatform) -> None:
    registered = Platform.objects.create(
        name="Simulated LMS",
        issuer=lms.issuer,
        client_id=lms.client_id,
        auth_login_url=f"{lms.url}/auth",
        auth_token_url=f"{lms.url}/token",
        jwks_url=f"{lms.url}/jwks",
    )
    Deployment.objects.create(platform=registered, deployment_id=lms.deployment_id)
    course = Course.objects.create(slug="dl101", title="Deep Learning 101")
    now = timezone.now()
    homework = Assignment.objects.create(
        course=course, title="Backprop homework", opens_at=now - timedelta(days=1), due_at=now + timedelta(days=7)
    )
    AssignmentItem.objects.create(assignment=homework, kind="exercise", exercise=exercise_from_folder(), points=10)
    LinkTarget.objects.create(token="tok", platform=registered, kind="assignment", assignment=homework)

    from tests.lti_helpers import launch

    client = Client()
    assert launch(client, lms, custom={"gradlab_link": "tok"}).status_code == 302
    learner = LtiIdentity.objects.get().user

    stack.extra_env.update(LTI_SCORE_RETRY_BASE_S="1", LTI_SCORE_RETRY_CAP_S="2")
    worker = stack.worker()
    lms.down = True
    AssignmentScore.objects.create(assignment=homework, learner=learner, score=7.0, max_score=10.0)
    wait_until(lambda: lms.refused_posts >= 3, timeout_s=60, what="three refused tries")
    outbox = ScoreOutbox.objects.get()
    assert outbox.status in {OutboxStatus.PENDING, OutboxStatus.SENDING} and "503" in outbox.last_error
    lms.down = False
    wait_until(
        lambda: ScoreOutbox.objects.filter(status=OutboxStatus.DELIVERED).exists(),
        timeout_s=60,
        what=f"delivery; worker log:\n{worker.log()[-2000:]}",
    )
    time.sleep(3)  # any duplicate send would arrive now
    assert len(lms.scores) == 1, lms.scores
    assert lms.scores[0]["score"]["scoreGiven"] == 7.0 and lms.scores[0]["score"]["userId"] == "lms-user-1"
    outbox.refresh_from_db()
    assert outbox.attempts == lms.refused_posts + 1
