"""`GET /metrics`: Prometheus text format, for the internal network or a bearer token.

Every figure is read when scraped from what all processes share, so one scrape of any web process
describes the whole deployment, workers on other machines included:

- the database: submissions by status and verdict, grading latency per phase (histograms built
  from the phase timestamps each submission carries), submissions queued and running;
- Redis: the broker's queue length, and a heartbeat each grading process writes every
  HEARTBEAT_S (its isolation level and its sandbox restarts; grader/heartbeat.py), kept for WORKER_TTL_S.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, IntegerField, Q, Sum, When
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from grader.heartbeat import WORKER_TTL_S, WORKERS_KEY, redis_client

logger = logging.getLogger(__name__)

BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# phase: (from, to) timestamps of grader.models.Submission
PHASES = {
    "queue": ("created_at", "started_at"),
    "sandbox": ("started_at", "sandbox_ready_at"),
    "checks": ("sandbox_ready_at", "checks_finished_at"),
    "training": ("checks_finished_at", "training_finished_at"),
    "total": ("created_at", "finished_at"),
}


class GradlabCollector(Collector):
    def collect(self) -> Iterable[Any]:
        yield from self._submissions()
        yield from self._latency()
        yield from self._redis_figures()

    def _submissions(self) -> Iterable[Any]:
        from grader.models import Submission, SubmissionStatus

        finished = CounterMetricFamily(
            "gradlab_submissions", "Submissions graded or failed, by verdict", labels=["status", "verdict"]
        )
        queued = 0
        running = 0
        for row in Submission.objects.order_by().values("status", "verdict").annotate(n=Count("id")):
            if row["status"] == SubmissionStatus.QUEUED:
                queued += row["n"]
            elif row["status"] == SubmissionStatus.RUNNING:
                running += row["n"]
            else:
                finished.add_metric([row["status"], row["verdict"] or "none"], row["n"])
        yield finished
        depth = GaugeMetricFamily("gradlab_queue_depth", "Submissions waiting to be graded", labels=["source"])
        depth.add_metric(["database"], queued)
        try:
            depth.add_metric(["broker"], int(redis_client().llen(settings.GRADING_QUEUE)))
        except Exception as error:  # the broker down is itself worth seeing: the series goes missing
            logger.warning("metrics: the broker's queue length is unavailable (%s)", error)
        yield depth
        yield GaugeMetricFamily("gradlab_submissions_running", "Submissions being graded now", value=running)

    def _latency(self) -> Iterable[Any]:
        from grader.models import Submission

        for phase, (start, end) in PHASES.items():
            duration = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
            rows = Submission.objects.order_by().filter(**{f"{start}__isnull": False, f"{end}__isnull": False})
            rows = rows.annotate(seconds=duration)
            aggregates: dict[str, Any] = {"count": Count("id"), "total": Sum("seconds")}
            for index, bound in enumerate(BUCKETS_S):
                aggregates[f"le{index}"] = Sum(
                    Case(When(Q(seconds__lte=_timedelta(bound)), then=1), default=0, output_field=IntegerField())
                )
            figures = rows.aggregate(**aggregates)
            buckets = [(str(bound), figures[f"le{index}"] or 0) for index, bound in enumerate(BUCKETS_S)]
            buckets.append(("+Inf", figures["count"] or 0))
            total = figures["total"].total_seconds() if figures["total"] is not None else 0.0
            family = HistogramMetricFamily(
                "gradlab_grading_phase_seconds", "Time spent in each phase of grading", labels=["phase"]
            )
            family.add_metric([phase], buckets, total)
            yield family

    def _redis_figures(self) -> Iterable[Any]:
        up = GaugeMetricFamily(
            "gradlab_worker_up",
            "Grading processes seen in the last minute, with their isolation",
            labels=["worker", "isolation"],
        )
        restarts = CounterMetricFamily(
            "gradlab_sandbox_restarts",
            "Sandbox zygotes started again (dead, stuck or out of turn), per grading process",
            labels=["worker"],
        )
        try:
            entries = redis_client().hgetall(WORKERS_KEY)
        except Exception as error:
            logger.warning("metrics: worker heartbeats are unavailable (%s)", error)
            entries = {}
        now = time.time()
        for raw_name, raw in entries.items():
            name = raw_name.decode()
            try:
                beat = json.loads(raw)
            except ValueError:
                continue
            if now - float(beat.get("seen", 0)) > WORKER_TTL_S:
                continue
            up.add_metric([name, str(beat.get("isolation", "unknown"))], 1)
            restarts.add_metric([name], int(beat.get("restarts", 0)))
        yield up
        yield restarts


def _timedelta(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GradlabCollector())
    return bytes(generate_latest(registry))


def metrics_allowed(request: HttpRequest) -> bool:
    from gradlab.middleware import _networks, address_in

    if address_in(request.META.get("REMOTE_ADDR", ""), _networks(settings.METRICS_ALLOWED_NETWORKS)):
        return True
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


class MetricsMiddleware:
    """Answer /metrics before host checks and the HTTPS redirect (Prometheus scrapes web:8000 over HTTP)."""

    path = "/metrics"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.rstrip("/") != self.path:
            return self.get_response(request)
        if not metrics_allowed(request):
            return HttpResponse(
                "metrics are served to the internal network or with the metrics token\n",
                status=403,
                content_type="text/plain",
            )
        return HttpResponse(metrics_text(), content_type="text/plain; version=0.0.4; charset=utf-8")
