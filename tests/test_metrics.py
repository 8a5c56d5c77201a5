"""/metrics: Prometheus text format, for the internal network or a token (issue 14)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from grader.models import Submission, SubmissionStatus
from tests.submission_helpers import exercise_from_folder

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_redis(settings):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: the Redis-backed series are left out
    return settings


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_refused_outside_the_internal_network_without_the_token(no_redis) -> None:  # type: ignore[no-untyped-def]
    no_redis.METRICS_TOKEN = "a-metrics-token-for-the-test-0123456789"
    outside = Client(REMOTE_ADDR="203.0.113.5")
    assert outside.get("/metrics").status_code == 403
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    with_token = outside.get("/metrics", HTTP_AUTHORIZATION="Bearer a-metrics-token-for-the-test-0123456789")
    assert with_token.status_code == 200
    # From the internal network, over plain HTTP and with the service's own host name (web:8000).
    inside = Client(REMOTE_ADDR="172.31.250.20").get("/metrics", HTTP_HOST="web:8000")
    assert inside.status_code == 200 and inside["Content-Type"].startswith("text/plain; version=0.0.4")


def test_submissions_by_verdict_latency_per_phase_and_queue_depth(no_redis, learner: User) -> None:  # type: ignore[no-untyped-def]
    exercise = exercise_from_folder("linear-backward")
    start = timezone.now() - timedelta(minutes=5)
    for verdict, queue_s in (("accepted", 0.2), ("accepted", 3.0), ("wrong_answer", 0.04)):
        row = Submission.objects.create(user=learner, exercise=exercise, code="pass")
        Submission.objects.filter(pk=row.pk).update(
            status=SubmissionStatus.GRADED,
            verdict=verdict,
            created_at=start,
            started_at=start + timedelta(seconds=queue_s),
            finished_at=start + timedelta(seconds=queue_s + 1),
        )
    Submission.objects.create(user=learner, exercise=exercise, code="pass")  # queued
    text = Client().get("/metrics").content.decode()
    samples = _samples(text)
    assert samples[("gradlab_submissions_total", (("status", "graded"), ("verdict", "accepted")))] == 2
    assert samples[("gradlab_submissions_total", (("status", "graded"), ("verdict", "wrong_answer")))] == 1
    assert samples[("gradlab_queue_depth", (("source", "database"),))] == 1
    queue = {
        labels: value for (name, labels), value in samples.items() if name == "gradlab_grading_phase_seconds_bucket"
    }
    assert queue[(("le", "0.05"), ("phase", "queue"))] == 1
    assert queue[(("le", "0.25"), ("phase", "queue"))] == 2
    assert queue[(("le", "5.0"), ("phase", "queue"))] == 3
    assert queue[(("le", "+Inf"), ("phase", "queue"))] == 3
    assert samples[("gradlab_grading_phase_seconds_count", (("phase", "total"),))] == 3
    assert samples[("gradlab_grading_phase_seconds_sum", (("phase", "queue"),))] == pytest.approx(3.24)
    assert "gradlab_worker_up" in text and "gradlab_sandbox_restarts" in text


@pytest.mark.sandbox
def test_a_grading_process_heartbeat_shows_as_a_live_worker_with_its_isolation(engine, private_redis) -> None:  # type: ignore[no-untyped-def]
    from grader.heartbeat import worker_heartbeat
    from grader.services import worker_identity

    worker_heartbeat()  # what each pool process does after start-up and after every task

    samples = _samples(Client().get("/metrics").content.decode())
    up = {labels: value for (name, labels), value in samples.items() if name == "gradlab_worker_up"}
    assert up == {(("isolation", engine.isolation.value), ("worker", worker_identity())): 1}
    assert samples[("gradlab_sandbox_restarts_total", (("worker", worker_identity()),))] == engine.sandbox_restarts
