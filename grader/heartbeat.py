"""Each grading process's heartbeat in Redis: its isolation level and its sandbox restarts.

Written by every pool process (connected in grader/tasks.py) every HEARTBEAT_S and after each
task; read by /metrics (dashboard/metrics.py), which counts a process as live while its last
beat is younger than WORKER_TTL_S.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

WORKERS_KEY = "gradlab:metrics:workers"
HEARTBEAT_S = 15
WORKER_TTL_S = 60


def redis_client() -> Any:
    """A client for settings.REDIS_URL that gives up quickly (a heartbeat or a scrape never waits)."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


def worker_heartbeat() -> None:
    """Write this grading process's isolation and sandbox restarts to Redis (never raises)."""
    try:
        from grader.engine import Engine
        from grader.services import worker_identity

        engine = Engine._instance
        beat = {
            "isolation": engine.isolation.value if engine is not None else "starting",
            "restarts": getattr(engine, "sandbox_restarts", 0) if engine is not None else 0,
            "seen": time.time(),
        }
        client = redis_client()
        client.hset(WORKERS_KEY, worker_identity(), json.dumps(beat))
        client.expire(WORKERS_KEY, WORKER_TTL_S * 10)
    except Exception as error:
        logger.debug("metrics heartbeat failed: %s", error)


def start_heartbeat() -> None:
    """Beat now and every HEARTBEAT_S from a daemon thread (called in each pool process)."""

    def loop() -> None:
        while True:
            worker_heartbeat()
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=loop, name="gradlab-metrics-heartbeat", daemon=True).start()
