"""What is happening right now: the grading queue in Redis and the live Celery workers.

Both read services that may be down; each function returns a result that says so
(`available=False` and a message for people) instead of raising, and never waits
longer than its timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from grader.models import Submission

REDIS_TIMEOUT_S = 0.5
PING_TIMEOUT_S = 0.6
# kombu's Redis transport keeps messages of priority > 0 in lists with these suffixes.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
ISOLATION_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class QueueDepth:
    available: bool
    depth: int | None = None
    message: str = ""


def queue_depth(queue: str | None = None, url: str | None = None) -> QueueDepth:
    """Messages waiting in the grading queue's Redis list (LLEN, all priorities)."""
    import redis

    name = queue or settings.GRADING_QUEUE
    client = redis.Redis.from_url(
        url or settings.CELERY_BROKER_URL, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    try:
        pipeline = client.pipeline(transaction=False)
        pipeline.llen(name)
        for step in PRIORITY_STEPS:
            pipeline.llen(f"{name}{PRIORITY_SEPARATOR}{step}")
        depth = sum(int(value) for value in pipeline.execute())
    except redis.RedisError as error:
        return QueueDepth(available=False, message=f"Redis is unavailable ({type(error).__name__})")
    finally:
        client.close()
    return QueueDepth(available=True, depth=depth)


@dataclass(frozen=True)
class Worker:
    hostname: str
    isolation: str  # the level of its latest grading, "" if it graded nothing in the last day
    last_graded_at: object | None = None


@dataclass(frozen=True)
class WorkerReport:
    available: bool
    workers: list[Worker] = field(default_factory=list)
    message: str = ""


def live_workers(timeout_s: float = PING_TIMEOUT_S) -> WorkerReport:
    """Workers answering a Celery ping, each with the isolation level of its latest grading.

    A worker records its hostname and the measured isolation on every submission it
    grades, so the level shown is the one it actually graded with.
    """
    from gradlab.celery import app

    try:
        replies = app.control.ping(timeout=timeout_s)
    except Exception as error:  # the broker is down: kombu raises several kinds
        return WorkerReport(available=False, message=f"the broker is unavailable ({type(error).__name__})")
    hostnames = sorted({hostname for reply in replies or [] for hostname in reply})
    if not hostnames:
        return WorkerReport(available=True, message="No worker answered: submissions will wait in the queue.")
    return WorkerReport(available=True, workers=workers_with_isolation(hostnames))


def _machine(name: str) -> str:
    """The machine of a Celery node name ('celery@web-1' -> 'web-1') or of a row's worker ('web-1:4242')."""
    host = name.rpartition("@")[2]
    return host.rpartition(":")[0] if ":" in host else host


def workers_with_isolation(hostnames: list[str]) -> list[Worker]:
    """Attach to each node the isolation of the latest grading on its machine in the last day. Two queries.

    A node answers pings as `name@machine`, while a submission records the pool process that
    graded it as `machine:pid`; they meet on the machine.
    """
    since = timezone.now() - ISOLATION_LOOKBACK
    machines = sorted({_machine(hostname) for hostname in hostnames})
    matches = Q(worker__in=hostnames)
    for machine in machines:
        matches |= Q(worker__startswith=f"{machine}:")
    recent = Submission.objects.filter(matches, finished_at__gte=since).order_by()
    latest: dict[str, Any] = {}
    isolation: dict[str, str] = {}
    rows = recent.values_list("worker").annotate(last=Max("finished_at"))
    per_worker = {worker: last for worker, last in rows}
    for worker, last in per_worker.items():
        machine = _machine(worker)
        if machine not in latest or last > latest[machine]:
            latest[machine] = last
    if latest:
        found = recent.filter(finished_at__in=list(latest.values())).values_list("worker", "finished_at", "isolation")
        for worker, finished_at, level in found:
            if latest.get(_machine(worker)) == finished_at:
                isolation[_machine(worker)] = level
    return [
        Worker(hostname, isolation.get(_machine(hostname), ""), latest.get(_machine(hostname)))
        for hostname in hostnames
    ]
