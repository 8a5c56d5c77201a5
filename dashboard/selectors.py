"""Reads behind the staff dashboard: every figure about submissions, computed by the database.

Each selector runs a fixed number of queries (one or two) whatever the number of
submissions, and returns plain dataclasses that the page and the CSV export share.
Aggregates run in SQL (COUNT, MIN, and on PostgreSQL `percentile_cont`); Python
only sorts small results: one row per day, per (exercise, verdict), per
(exercise, attempts) or per (learner, question).

Speed at 100,000 submissions comes from the indexes (grader.models.Submission.Meta):
every query here reads the narrow `submission_dashboard_idx` (window columns and
phase timestamps), `submission_ex_verdict_idx` or `submission_user_ex_time_idx`
rather than the wide rows; the diagnoses come from the SubmissionDiagnosis table
written with each wrong answer, not from the result JSON. `dashboard.figures.figures_compute`
shares the per-(exercise, verdict) counts and the per-learner counts between the tables.

On SQLite, which has no percentile aggregate, latency percentiles are taken in
Python over the durations of the `LATENCY_SAMPLE_SIZE` most recently created
finished submissions of the window (a bounded query).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, Q

from dashboard.aggregates import (
    DayOf,
    PercentileCont,
    SecondsBetween,
    Window,
    is_postgres,
    median_of_histogram,
)
from grader.models import Exercise, Submission, SubmissionDiagnosis, SubmissionStatus
from grader.verdicts import Verdict
from gradlab.stats import percentile

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
RECENT_INCIDENTS = 20


# --- Submissions over time ----------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: date
    submissions: int
    accepted: int


def submissions_per_day(window: Window) -> list[DayCount]:
    """Submissions and accepted submissions per UTC day, every day of the window (zeros included)."""
    if is_postgres():
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
    learner_sql, learner_params = window.learner_sql("s.user_id")
    sql = f"""
        SELECT d.n, c.total, c.accepted
        FROM unnest(%s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS d(low, high, n)
        CROSS JOIN LATERAL (
            SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE s.verdict = %s) AS accepted
            FROM {table} s WHERE s.created_at >= d.low AND s.created_at < d.high{learner_sql}
        ) c
    """  # noqa: S608 - the table name comes from the model, values are parameters
    counts: dict[int, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [lows, highs, Verdict.ACCEPTED.value, *learner_params])
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
    since_sql = "WHERE 1 = 1"
    if window.since is not None:
        since_sql = "WHERE created_at >= %s"
        params.append(connection.ops.adapt_datetimefield_value(window.since))
    learner_sql, learner_params = window.learner_sql()
    since_sql += learner_sql
    params += learner_params
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
    learner_sql, learner_params = window.learner_sql()
    params: list[Any] = [Verdict.ACCEPTED.value, *learner_params]
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
                FROM {table} WHERE verdict = %s{learner_sql} GROUP BY user_id, exercise_id {having_sql}
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
    window: Window, per_exercise: int | None = None, wrong: dict[int, int] | None = None
) -> list[DiagnosisCount]:
    """Every (output, mistake) diagnosis of wrong answers, per exercise: named mistakes first, most
    frequent first, then "unknown" ones; `per_exercise` keeps only the first n of each exercise.

    A submission counts once per (output, mistake) however many entries repeat it.
    Counted from SubmissionDiagnosis (one row per distinct pair of a wrong answer,
    written with the verdict) through its covering index. `wrong` ({exercise id:
    wrong answers in the window}, from window_counts) saves a query.
    """
    rows = SubmissionDiagnosis.objects.order_by()
    if window.since is not None:
        rows = rows.filter(created_at__gte=window.since)
    if window.course_id is not None:
        rows = rows.filter(submission__user_id__in=window.learners())
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
        # Named mistakes first (most frequent first), "unknown" after them: a named mistake is what
        # an instructor can teach against; "unknown" first used to push them off the list.
        top = sorted(by_exercise[exercise_id], key=lambda item: (item[1] == "unknown", -item[2], item[1], item[0]))
        if per_exercise is not None:
            top = top[:per_exercise]
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
    if is_postgres():
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


def sandbox_incidents(limit: int = RECENT_INCIDENTS, course_id: int | None = None) -> list[Submission]:
    """The latest submissions the sandbox stopped (forbidden, or a limit hit), newest first. One query.

    With `course_id`, only those of the course's enrolled learners.
    """
    rows = Submission.objects.filter(verdict__in=[verdict.value for verdict in INCIDENT_VERDICTS])
    if course_id is not None:
        from courses.models import Enrollment

        rows = rows.filter(user_id__in=Enrollment.objects.filter(course_id=course_id).values("user_id"))
    return list(
        rows.select_related("user", "exercise")
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
