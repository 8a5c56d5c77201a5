"""Reads behind the staff dashboard: every figure is computed by the database.

Each selector runs a fixed number of queries (one or two) whatever the number of
submissions, and returns plain dataclasses that the page and the CSV export share.
Aggregates run in SQL (COUNT, MIN, and on PostgreSQL `percentile_cont`); Python
only sorts small results: one row per day, per (exercise, verdict), per
(exercise, attempts) or per (learner, question).

Speed at 100,000 submissions comes from the indexes (grader.models.Submission.Meta):
every query here reads the narrow `submission_dashboard_idx` (window columns and
phase timestamps), `submission_ex_verdict_idx` or `submission_user_ex_time_idx`
rather than the wide rows; the diagnoses come from the SubmissionDiagnosis table
written with each wrong answer, not from the result JSON. `figures_compute` shares
the per-(exercise, verdict) counts and the per-learner counts between the tables.

On SQLite, which has no percentile aggregate, latency percentiles are taken in
Python over the durations of the `LATENCY_SAMPLE_SIZE` most recently created
finished submissions of the window (a bounded query).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Case, Count, FloatField, Func, IntegerField, Max, Min, Q, When
from django.db.models.expressions import Combinable
from django.db.models.fields import DateField, Field
from django.utils import timezone

from grader.models import Exercise, Submission, SubmissionDiagnosis, SubmissionStatus
from grader.verdicts import Verdict
from quizzes.models import QuizAttempt, QuizQuestion

T = TypeVar("T")

INCIDENT_VERDICTS = (
    Verdict.FORBIDDEN,
    Verdict.TIME_LIMIT_EXCEEDED,
    Verdict.MEMORY_LIMIT_EXCEEDED,
    Verdict.OUTPUT_LIMIT_EXCEEDED,
)
# Verdicts of a grading that ran; internal_error is the grader's fault, not the learner's.
LEARNER_VERDICTS = tuple(verdict for verdict in Verdict if verdict != Verdict.INTERNAL_ERROR)
VERDICT_VALUES = frozenset(verdict.value for verdict in Verdict)
LATENCY_SAMPLE_SIZE = 20_000
DISCRIMINATION_GROUP_SHARE = 0.27
TOP_DIAGNOSES_PER_EXERCISE = 5
RECENT_INCIDENTS = 20
DEFAULT_CACHE_S = 60
INDEX_RANDOM_PAGE_COST = 1.1


# --- Helpers ------------------------------------------------------------------------


class DayOf(Func):
    """The UTC calendar date of a timestamp, in SQL on both backends.

    Django's TruncDate calls a Python function per row on SQLite; SQLite's own
    date() reads the stored UTC text directly.
    """

    output_field = DateField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="date(%(expressions)s)", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="((%(expressions)s) AT TIME ZONE 'UTC')::date", **extra)


class SecondsBetween(Func):
    """`end - start` in seconds as a float (NULL if either is NULL)."""

    output_field = FloatField()
    arity = 2

    def __init__(self, start: str | Combinable, end: str | Combinable) -> None:
        super().__init__(end, start)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC: whole seconds from
        # strftime, microseconds from the text (julianday() would round to milliseconds).
        end, start = (compiler.compile(expression) for expression in self.get_source_expressions())
        sql = (
            f"((CAST(strftime('%%s', {end[0]}) AS REAL) + CAST(substr({end[0]}, 20) AS REAL))"
            f" - (CAST(strftime('%%s', {start[0]}) AS REAL) + CAST(substr({start[0]}, 20) AS REAL)))"
        )
        return sql, [*end[1], *end[1], *start[1], *start[1]]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        end, start = (compiler.compile(expression) for expression in self.get_source_expressions())
        # date_part returns double precision; EXTRACT returns numeric (slower) since PostgreSQL 14.
        return f"date_part('epoch', {end[0]} - {start[0]})", [*end[1], *start[1]]


class PercentileCont(Func):
    """PostgreSQL's `percentile_cont(ARRAY[fractions]) WITHIN GROUP (ORDER BY expression)`: one sort, a list back."""

    contains_aggregate = True
    output_field = Field()  # no converter: psycopg already returns a list of floats

    def __init__(self, expression: Any, fractions: Sequence[float]) -> None:
        super().__init__(expression)
        self.fractions = [float(fraction) for fraction in fractions]

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # type: ignore[override]
        inner, params = compiler.compile(self.get_source_expressions()[0])
        fractions = ", ".join(repr(fraction) for fraction in self.fractions)
        return f"percentile_cont(ARRAY[{fractions}]::float8[]) WITHIN GROUP (ORDER BY {inner})", params


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Linear-interpolated percentile of sorted values (the definition of SQL's percentile_cont)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def median_of_histogram(histogram: dict[int, int]) -> float | None:
    """Median (percentile_cont 0.5) of values given as {value: how many times}."""
    total = sum(histogram.values())
    if not total:
        return None

    def nth(index: int) -> int:
        seen = 0
        for value in sorted(histogram):
            seen += histogram[value]
            if index < seen:
                return value
        raise IndexError(index)

    position = (total - 1) / 2
    low, high = nth(math.floor(position)), nth(math.ceil(position))
    return low + (high - low) * (position - math.floor(position))


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class Window:
    """The period the dashboard looks at: the last `days` days, or everything (days=None)."""

    days: int | None
    now: datetime

    @property
    def since(self) -> datetime | None:
        return None if self.days is None else self.now - timedelta(days=self.days)

    def submissions(self) -> Any:
        rows = Submission.objects.order_by()
        return rows if self.since is None else rows.filter(created_at__gte=self.since)

    @property
    def label(self) -> str:
        return "all time" if self.days is None else f"last {self.days} days"


def window_of(days: int | None, now: datetime | None = None) -> Window:
    return Window(days=days, now=now or timezone.now())


# --- Submissions over time ----------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: date
    submissions: int
    accepted: int


def submissions_per_day(window: Window) -> list[DayCount]:
    """Submissions and accepted submissions per UTC day, every day of the window (zeros included)."""
    if _is_postgres():
        return _submissions_per_day_postgres(window)
    rows = (
        window.submissions()
        .annotate(day=DayOf("created_at"))
        .values("day")
        .annotate(total=Count("id"), accepted=Count("id", filter=Q(verdict=Verdict.ACCEPTED.value)))
        .order_by("day")
    )
    counts = {_as_date(row["day"]): (row["total"], row["accepted"]) for row in rows}
    if not counts:
        return []
    first = min(counts) if window.since is None else window.since.date()
    last = max(window.now.date(), *counts)
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    return [DayCount(day, *counts.get(day, (0, 0))) for day in days]


def _submissions_per_day_postgres(window: Window) -> list[DayCount]:
    """submissions_per_day on PostgreSQL: one index range count per day (two queries).

    Grouping 100,000 rows by their date makes PostgreSQL sort them (it cannot tell
    how few distinct days there are); counting each day's [midnight, next midnight)
    range of `submission_dashboard_idx` reads the same index entries without a sort.
    """
    bounds = window.submissions().aggregate(first=Min("created_at"), last=Max("created_at"))
    if bounds["first"] is None:
        return []
    first = bounds["first"].astimezone(UTC).date() if window.since is None else window.since.astimezone(UTC).date()
    last = max(window.now.astimezone(UTC).date(), bounds["last"].astimezone(UTC).date())
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    starts = [datetime.combine(day, dt_time.min, tzinfo=UTC) for day in days]
    lows = [start if window.since is None else max(start, window.since) for start in starts]
    highs = [start + timedelta(days=1) for start in starts]
    table = Submission._meta.db_table
    sql = f"""
        SELECT d.n, c.total, c.accepted
        FROM unnest(%s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS d(low, high, n)
        CROSS JOIN LATERAL (
            SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE s.verdict = %s) AS accepted
            FROM {table} s WHERE s.created_at >= d.low AND s.created_at < d.high
        ) c
    """  # noqa: S608 - the table name comes from the model, values are parameters
    counts: dict[int, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [lows, highs, Verdict.ACCEPTED.value])
        for index, total, accepted in cursor.fetchall():
            counts[int(index) - 1] = (int(total), int(accepted))
    return [DayCount(day, *counts.get(index, (0, 0))) for index, day in enumerate(days)]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# --- Exercises ------------------------------------------------------------------------


@dataclass
class ExerciseStats:
    """What happened to one exercise's submissions in the window.

    `pass_rate` is accepted / graded (submissions with a verdict, internal errors
    excluded); `median_attempts` is the median, over learners who solved it, of the
    number of submissions up to and including their first accepted one.
    """

    exercise_id: int
    slug: str
    title: str
    submissions: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    learners: int = 0
    learners_solved: int = 0
    median_attempts: float | None = None

    @property
    def graded(self) -> int:
        return sum(self.verdicts.get(verdict.value, 0) for verdict in LEARNER_VERDICTS)

    @property
    def accepted(self) -> int:
        return self.verdicts.get(Verdict.ACCEPTED.value, 0)

    @property
    def pass_rate(self) -> float | None:
        return self.accepted / self.graded if self.graded else None

    def verdict_mix(self) -> list[tuple[str, str, int, float]]:
        """(verdict, label, count, share of graded) for each verdict that occurred, in Verdict order."""
        total = sum(self.verdicts.values())
        return [
            (verdict.value, verdict.label, self.verdicts[verdict.value], self.verdicts[verdict.value] / total)
            for verdict in Verdict
            if self.verdicts.get(verdict.value)
        ]


@dataclass(frozen=True)
class WindowCounts:
    """Counts of one window that several tables share (two queries).

    `verdicts`: {(exercise id, verdict): submissions}, "" for not graded yet;
    `learners`/`solved`: {exercise id: distinct learners who submitted / got an
    accept}; `all_learners`: distinct learners who submitted anything.
    """

    verdicts: dict[tuple[int, str], int]
    learners: dict[int, int]
    solved: dict[int, int]
    all_learners: int

    def wrong_answers(self) -> dict[int, int]:
        return {
            exercise_id: count
            for (exercise_id, verdict), count in self.verdicts.items()
            if verdict == Verdict.WRONG_ANSWER.value
        }


def window_counts(window: Window) -> WindowCounts:
    """The shared counts of `window`: one GROUP BY (exercise, verdict), one over (learner, exercise) pairs."""
    verdicts = {
        (exercise_id, verdict): count
        for exercise_id, verdict, count in window.submissions()
        .values_list("exercise_id", "verdict")
        .annotate(count=Count("id"))
    }
    table = Submission._meta.db_table
    params: list[Any] = [Verdict.ACCEPTED.value]
    since_sql = ""
    if window.since is not None:
        since_sql = "WHERE created_at >= %s"
        params.append(connection.ops.adapt_datetimefield_value(window.since))
    # One row per (learner, exercise) of the window, then per exercise; the row with a
    # NULL exercise carries the distinct learners of the whole window.
    sql = f"""
        WITH pairs AS (
            SELECT user_id, exercise_id, MAX(CASE WHEN verdict = %s THEN 1 ELSE 0 END) AS solved
            FROM {table} {since_sql}
            GROUP BY user_id, exercise_id
        )
        SELECT exercise_id, COUNT(*), SUM(solved) FROM pairs GROUP BY exercise_id
        UNION ALL
        SELECT NULL, COUNT(DISTINCT user_id), 0 FROM pairs
    """  # noqa: S608 - the table name comes from the model, values are parameters
    learners: dict[int, int] = {}
    solved: dict[int, int] = {}
    all_learners = 0
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for exercise_id, count, solved_count in cursor.fetchall():
            if exercise_id is None:
                all_learners = int(count)
            else:
                learners[exercise_id] = int(count)
                solved[exercise_id] = int(solved_count or 0)
    return WindowCounts(verdicts, learners, solved, all_learners)


def exercise_stats(window: Window, counts: WindowCounts | None = None) -> list[ExerciseStats]:
    """One ExerciseStats per exercise (those without submissions too), in catalog order.

    Four queries, or two when the window's `counts` are given.
    """
    counts = counts or window_counts(window)
    stats = {
        exercise.pk: ExerciseStats(exercise.pk, exercise.slug, exercise.title)
        for exercise in Exercise.objects.only("id", "slug", "title", "order")
    }
    for (exercise_id, verdict), count in counts.verdicts.items():
        entry = stats.get(exercise_id)
        if entry is None:
            continue
        entry.submissions += count
        if count and verdict in VERDICT_VALUES:
            entry.verdicts[verdict] = count
    for exercise_id, entry in stats.items():
        entry.verdicts = {
            verdict.value: entry.verdicts[verdict.value] for verdict in Verdict if verdict.value in entry.verdicts
        }
        entry.learners = counts.learners.get(exercise_id, 0)
        entry.learners_solved = counts.solved.get(exercise_id, 0)
    for exercise_id, histogram in attempts_to_first_accept(window).items():
        if exercise_id in stats:
            stats[exercise_id].median_attempts = median_of_histogram(histogram)
    return list(stats.values())


def attempts_to_first_accept(window: Window) -> dict[int, dict[int, int]]:
    """{exercise id: {attempts: number of learners}} for learners whose first accept is in the window.

    Attempts count every submission of the learner to the exercise up to and
    including the first accepted one (earlier ones before the window included).
    Both steps read `submission_user_ex_time_idx` only: the first accepts in index
    order, then one short index range per (learner, exercise).
    """
    table = Submission._meta.db_table
    having_sql = ""
    params: list[Any] = [Verdict.ACCEPTED.value]
    if window.since is not None:
        having_sql = "HAVING MIN(created_at) >= %s"
        params.append(connection.ops.adapt_datetimefield_value(window.since))
    sql = f"""
        SELECT pairs.exercise_id, pairs.attempts, COUNT(*)
        FROM (
            SELECT firsts.exercise_id AS exercise_id,
                   (SELECT COUNT(*) FROM {table} s
                    WHERE s.user_id = firsts.user_id AND s.exercise_id = firsts.exercise_id
                      AND s.created_at <= firsts.first_at) AS attempts
            FROM (
                SELECT user_id, exercise_id, MIN(created_at) AS first_at
                FROM {table} WHERE verdict = %s GROUP BY user_id, exercise_id {having_sql}
            ) firsts
        ) pairs
        GROUP BY pairs.exercise_id, pairs.attempts
    """  # noqa: S608 - the table name comes from the model, values are parameters
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for exercise_id, attempts, learners in cursor.fetchall():
            histograms[exercise_id][int(attempts)] = int(learners)
    return dict(histograms)


# --- Diagnoses --------------------------------------------------------------------


@dataclass(frozen=True)
class DiagnosisCount:
    """How many wrong answers to an exercise got this diagnosis on this output."""

    exercise_id: int
    exercise_slug: str
    output: str
    mistake: str
    submissions: int
    share: float  # of the exercise's wrong answers in the window


def common_diagnoses(
    window: Window, per_exercise: int = TOP_DIAGNOSES_PER_EXERCISE, wrong: dict[int, int] | None = None
) -> list[DiagnosisCount]:
    """The most frequent (output, mistake) diagnoses of wrong answers, per exercise, most frequent first.

    A submission counts once per (output, mistake) however many entries repeat it.
    Counted from SubmissionDiagnosis (one row per distinct pair of a wrong answer,
    written with the verdict) through its covering index. `wrong` ({exercise id:
    wrong answers in the window}, from window_counts) saves a query.
    """
    rows = SubmissionDiagnosis.objects.order_by()
    if window.since is not None:
        rows = rows.filter(created_at__gte=window.since)
    counted = rows.values_list("exercise_id", "output", "mistake").annotate(count=Count("*"))
    if wrong is None:
        wrong = dict(
            window.submissions()
            .filter(verdict=Verdict.WRONG_ANSWER.value)
            .values_list("exercise_id")
            .annotate(count=Count("id"))
        )
    by_exercise: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for exercise_id, output, mistake, count in counted:
        by_exercise[exercise_id].append((str(output), str(mistake), int(count)))
    exercises = list(Exercise.objects.values_list("id", "slug"))
    slugs = dict(exercises)
    order = {exercise_id: index for index, (exercise_id, _) in enumerate(exercises)}
    result: list[DiagnosisCount] = []
    for exercise_id in sorted(by_exercise, key=lambda key: order.get(key, len(order))):
        top = sorted(by_exercise[exercise_id], key=lambda item: (-item[2], item[1], item[0]))[:per_exercise]
        total_wrong = wrong.get(exercise_id, 0) or 1
        result.extend(
            DiagnosisCount(exercise_id, slugs.get(exercise_id, "?"), output, mistake, count, count / total_wrong)
            for output, mistake, count in top
        )
    return result


# --- Grading latency --------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    key: str
    label: str
    start: str
    end: str


PHASES = (
    Phase("queue", "Queue wait", "enqueued_at", "started_at"),
    Phase("sandbox", "Sandbox start", "started_at", "sandbox_ready_at"),
    Phase("checks", "Gradient checks", "sandbox_ready_at", "checks_finished_at"),
    Phase("training", "Training run", "checks_finished_at", "training_finished_at"),
    Phase("total", "Total (submitted to verdict)", "created_at", "finished_at"),
)


@dataclass(frozen=True)
class PhaseLatency:
    """p50/p95 of one grading phase, in seconds, over `count` submissions that went through it."""

    key: str
    label: str
    count: int
    p50_s: float | None
    p95_s: float | None

    @property
    def p50_ms(self) -> float | None:
        return None if self.p50_s is None else self.p50_s * 1000

    @property
    def p95_ms(self) -> float | None:
        return None if self.p95_s is None else self.p95_s * 1000


def grading_latency(window: Window) -> list[PhaseLatency]:
    """Latency percentiles per phase from the phase timestamps of finished submissions.

    A phase counts for a submission only when both its timestamps are set (a syntax
    error never reaches the training run). PostgreSQL computes the percentiles over
    the whole window; SQLite over the LATENCY_SAMPLE_SIZE most recently created finished
    submissions (read backwards along the created_at index, so it stops early).
    """
    finished = window.submissions().filter(finished_at__isnull=False)
    durations = {phase.key: SecondsBetween(phase.start, phase.end) for phase in PHASES}
    if _is_postgres():
        aggregates: dict[str, Any] = {}
        for phase in PHASES:
            aggregates[f"{phase.key}_count"] = Count(durations[phase.key])
            aggregates[f"{phase.key}_p"] = PercentileCont(durations[phase.key], (0.5, 0.95))
        row = finished.aggregate(**aggregates)
        return [
            PhaseLatency(phase.key, phase.label, row[f"{phase.key}_count"], *(row[f"{phase.key}_p"] or (None, None)))
            for phase in PHASES
        ]
    sample = (
        finished.annotate(**{f"d_{key}": expression for key, expression in durations.items()})
        .order_by("-created_at")
        .values_list(*(f"d_{phase.key}" for phase in PHASES))[:LATENCY_SAMPLE_SIZE]
    )
    columns: list[list[float]] = [[] for _ in PHASES]
    for values in sample:
        for column, value in zip(columns, values, strict=True):
            if value is not None:
                column.append(float(value))
    result = []
    for phase, column in zip(PHASES, columns, strict=True):
        column.sort()
        result.append(
            PhaseLatency(phase.key, phase.label, len(column), percentile(column, 0.5), percentile(column, 0.95))
        )
    return result


# --- Incidents and totals -----------------------------------------------------------


def sandbox_incidents(limit: int = RECENT_INCIDENTS) -> list[Submission]:
    """The latest submissions the sandbox stopped (forbidden, or a limit hit), newest first. One query."""
    return list(
        Submission.objects.filter(verdict__in=[verdict.value for verdict in INCIDENT_VERDICTS])
        .select_related("user", "exercise")
        .only(
            "id",
            "verdict",
            "created_at",
            "worker",
            "isolation",
            "result",
            "user__username",
            "exercise__slug",
            "exercise__title",
        )
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class Totals:
    submissions: int
    graded: int
    accepted: int
    learners: int

    @property
    def pass_rate(self) -> float | None:
        return self.accepted / self.graded if self.graded else None


def totals(window: Window, counts: WindowCounts | None = None) -> Totals:
    """Headline counts of the window, from its shared counts (two queries unless `counts` is given)."""
    counts = counts or window_counts(window)
    graded_verdicts = {verdict.value for verdict in LEARNER_VERDICTS}
    return Totals(
        submissions=sum(counts.verdicts.values()),
        graded=sum(count for (_, verdict), count in counts.verdicts.items() if verdict in graded_verdicts),
        accepted=sum(count for (_, verdict), count in counts.verdicts.items() if verdict == Verdict.ACCEPTED.value),
        learners=counts.all_learners,
    )


@dataclass(frozen=True)
class InFlight:
    queued: int
    running: int


def in_flight() -> InFlight:
    """Submissions queued or being graded right now (the status index answers it). One query."""
    row = Submission.objects.filter(status__in=[SubmissionStatus.QUEUED, SubmissionStatus.RUNNING]).aggregate(
        queued=Count("id", filter=Q(status=SubmissionStatus.QUEUED)),
        running=Count("id", filter=Q(status=SubmissionStatus.RUNNING)),
    )
    return InFlight(**row)


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
    if not _is_postgres():
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
    if _is_postgres():
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
            quiz = quiz_question_stats()
            per_day = pending_per_day.result() if pending_per_day else submissions_per_day(window)
            latency = pending_latency.result() if pending_latency else grading_latency(window)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Figures(window, timezone.now(), elapsed_ms, window_totals, per_day, exercises, diagnoses, latency, quiz)


def dashboard_figures(days: int | None, *, refresh: bool = False) -> Figures:
    """The figures of the last `days` days, from the cache when computed less than DASHBOARD_CACHE_S ago.

    Aggregating 100,000 rows takes the database a fraction of a second per table;
    several staff members opening the page, and its reloads, share one computation.
    `refresh` recomputes now. DASHBOARD_CACHE_S = 0 turns the cache off.
    """
    ttl = int(getattr(settings, "DASHBOARD_CACHE_S", DEFAULT_CACHE_S))
    key = f"dashboard:figures:v1:{days}"
    if ttl > 0 and not refresh:
        cached = cache.get(key)
        if isinstance(cached, Figures):
            return cached
    figures = figures_compute(window_of(days))
    if ttl > 0:
        cache.set(key, figures, ttl)
    return figures


# --- Quiz questions ------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionStats:
    """Item analysis of one quiz question.

    `percent_correct`: of the learners who answered it, the share whose best attempt
    is correct. `discrimination`: share correct in the upper group minus share
    correct in the lower group, where the groups are the top and bottom 27% of the
    learners who took the lesson's quiz, ranked by their total quiz score (sum of
    best scores); a learner in a group who skipped the question counts as not
    correct. None when fewer than two learners took the quiz.
    """

    question_id: int
    lesson_slug: str
    key: str
    kind: str
    learners: int
    correct: int
    discrimination: float | None
    group_size: int

    @property
    def percent_correct(self) -> float | None:
        return 100 * self.correct / self.learners if self.learners else None


def quiz_question_stats() -> list[QuestionStats]:
    """QuestionStats for every active question, in lesson and question order. Two queries."""
    questions = list(
        QuizQuestion.objects.filter(is_active=True)
        .select_related("lesson")
        .only("id", "key", "kind", "order", "lesson__slug", "lesson__order")
        .order_by("lesson__order", "lesson__slug", "order", "key")
    )
    best_rows = (
        QuizAttempt.objects.filter(question__is_active=True)
        .values_list("user_id", "question_id", "question__lesson_id")
        .annotate(
            best=Max("score"), correct=Max(Case(When(is_correct=True, then=1), default=0, output_field=IntegerField()))
        )
        .order_by()
    )
    best: dict[tuple[int, int], bool] = {}
    totals_by_lesson: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for user_id, question_id, lesson_id, score, is_right in best_rows:
        best[(user_id, question_id)] = bool(is_right)
        totals_by_lesson[lesson_id][user_id] += float(score)

    groups: dict[int, tuple[set[int], set[int], int]] = {}
    for lesson_id, scores in totals_by_lesson.items():
        groups[lesson_id] = discrimination_groups(scores)

    learners: dict[int, int] = defaultdict(int)
    correct: dict[int, int] = defaultdict(int)
    for (_, question_id), is_correct in best.items():
        learners[question_id] += 1
        correct[question_id] += int(is_correct)

    result = []
    for question in questions:
        upper, lower, size = groups.get(question.lesson_id, (set(), set(), 0))
        discrimination = None
        if size:
            upper_correct = sum(1 for user_id in upper if best.get((user_id, question.pk)))
            lower_correct = sum(1 for user_id in lower if best.get((user_id, question.pk)))
            discrimination = (upper_correct - lower_correct) / size
        result.append(
            QuestionStats(
                question.pk,
                question.lesson.slug,
                question.key,
                question.kind,
                learners[question.pk],
                correct[question.pk],
                discrimination,
                size,
            )
        )
    return result


def discrimination_groups(scores: dict[int, float]) -> tuple[set[int], set[int], int]:
    """(upper group, lower group, group size) of learners ranked by total score.

    Each group holds round(27% of the learners), at least one, and never overlaps
    the other; ties are broken by user id so the split is deterministic.
    """
    if len(scores) < 2:
        return set(), set(), 0
    ranked = sorted(scores, key=lambda user_id: (-scores[user_id], user_id))
    size = min(max(1, round(DISCRIMINATION_GROUP_SHARE * len(ranked))), len(ranked) // 2)
    return set(ranked[:size]), set(ranked[-size:]), size


def rows_for_csv(items: Iterable[Any], columns: Sequence[tuple[str, Any]]) -> Iterable[list[Any]]:
    """Header row, then one row per item; `columns` are (header, function of the item)."""
    yield [header for header, _ in columns]
    for item in items:
        yield [getter(item) for _, getter in columns]
