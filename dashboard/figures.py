"""All the dashboard's figures for one window, computed together and cached together.

`dashboard_figures` is what the page calls; `figures_compute` runs every selector of
dashboard/selectors.py and dashboard/quiz_stats.py, two of them on connections of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from dashboard.aggregates import Window, is_postgres, window_of
from dashboard.quiz_stats import QuestionStats, quiz_question_stats
from dashboard.selectors import (
    DayCount,
    DiagnosisCount,
    ExerciseStats,
    PhaseLatency,
    Totals,
    common_diagnoses,
    exercise_stats,
    grading_latency,
    submissions_per_day,
    totals,
    window_counts,
)

T = TypeVar("T")

DEFAULT_CACHE_S = 60
INDEX_RANDOM_PAGE_COST = 1.1


@dataclass(frozen=True)
class Figures:
    """Every aggregate of the dashboard for one window, computed together (and cached together)."""

    window: Window
    computed_at: datetime
    compute_ms: float
    totals: Totals
    per_day: list[DayCount]
    exercises: list[ExerciseStats]
    diagnoses: list[DiagnosisCount]
    latency: list[PhaseLatency]
    quiz: list[QuestionStats]


@contextmanager
def planner_for_cached_indexes() -> Iterator[None]:
    """A transaction whose PostgreSQL planner prices index pages as cached.

    The default random_page_cost (4, a spinning disk) makes a full-window index-only
    scan look dearer than reading the wide table; the dashboard's indexes are small
    and cached, and reading them is 2-3x faster. SET LOCAL ends with the transaction.
    """
    if not is_postgres():
        # Nothing to tune; and SQLite's IMMEDIATE transactions (settings) would make two
        # readers wait for each other.
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL random_page_cost = {INDEX_RANDOM_PAGE_COST}")
        yield


def _second_connection_sees_the_data() -> bool:
    """True on PostgreSQL and on a SQLite file; an in-memory SQLite database lives in one connection."""
    if is_postgres():
        return True
    name = str(connection.settings_dict.get("NAME") or "")
    return connection.vendor == "sqlite" and bool(name) and ":memory:" not in name and "mode=memory" not in name


def _on_own_connection(selector: Callable[[Window], T], window: Window) -> T:
    """`selector(window)` in a worker thread, on that thread's own connection (closed after)."""
    try:
        with planner_for_cached_indexes():
            return selector(window)
    finally:
        connection.close()


def figures_compute(window: Window) -> Figures:
    """Run every aggregate selector for `window` (about a dozen queries, whatever the row count).

    On PostgreSQL or a SQLite file, outside a transaction, the latency percentiles (the
    one aggregate that must sort every duration of the window) and the per-day counts run
    at the same time on connections of their own, so the database works on two cores
    (SQLite releases the GIL while it runs a query); inside a transaction (tests, or a
    caller's atomic block) another connection could not see uncommitted rows, so
    everything runs in turn on this one.
    """
    started = time.perf_counter()
    concurrent = _second_connection_sees_the_data() and not connection.in_atomic_block
    with ThreadPoolExecutor(max_workers=2) if concurrent else nullcontext() as pool:
        pending_latency = pool.submit(_on_own_connection, grading_latency, window) if pool else None
        pending_per_day = pool.submit(_on_own_connection, submissions_per_day, window) if pool else None
        with planner_for_cached_indexes():
            counts = window_counts(window)
            window_totals = totals(window, counts)
            exercises = exercise_stats(window, counts)
            diagnoses = common_diagnoses(window, wrong=counts.wrong_answers())
            quiz = quiz_question_stats(course_id=window.course_id)
            per_day = pending_per_day.result() if pending_per_day else submissions_per_day(window)
            latency = pending_latency.result() if pending_latency else grading_latency(window)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Figures(window, timezone.now(), elapsed_ms, window_totals, per_day, exercises, diagnoses, latency, quiz)


def dashboard_figures(days: int | None, *, refresh: bool = False, course_id: int | None = None) -> Figures:
    """The figures of the last `days` days, from the cache when computed less than DASHBOARD_CACHE_S ago.

    Aggregating 100,000 rows takes the database a fraction of a second per table;
    several staff members opening the page, and its reloads, share one computation.
    `refresh` recomputes now. DASHBOARD_CACHE_S = 0 turns the cache off.
    """
    ttl = int(getattr(settings, "DASHBOARD_CACHE_S", DEFAULT_CACHE_S))
    key = f"dashboard:figures:v1:{days}:{course_id}"
    if ttl > 0 and not refresh:
        cached = cache.get(key)
        if isinstance(cached, Figures):
            return cached
    figures = figures_compute(window_of(days, course_id=course_id))
    if ttl > 0:
        cache.set(key, figures, ttl)
    return figures
