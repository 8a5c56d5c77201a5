"""The staff dashboard, with a CSV export of each table."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import live, selectors
from dashboard.aggregates import Window, window_of
from dashboard.figures import dashboard_figures
from dashboard.quiz_stats import quiz_question_stats
from grader.verdicts import Verdict
from gradlab.apps import INSTRUCTOR_GROUP
from gradlab.csvsafe import csv_row
from lessons.progress import submission_url

# "What learners get wrong" shows this many diagnoses of an exercise; the rest open with "show all".
DIAGNOSES_SHOWN = 5
WINDOW_CHOICES: dict[str, int | None] = {"7": 7, "30": 30, "90": 90, "all": None}
DEFAULT_WINDOW = "30"


def can_see_dashboard(user: Any) -> bool:
    """Staff and members of the instructor group; nobody else."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.is_superuser or user.groups.filter(name=INSTRUCTOR_GROUP).exists())


def staff_or_instructor_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Guests are sent to the login page; signed-in learners get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_see_dashboard(request.user):
            raise PermissionDenied("The dashboard is for staff and instructors.")
        return view(request, *args, **kwargs)

    return wrapper


def _window_key(request: HttpRequest) -> str:
    key = request.GET.get("days", DEFAULT_WINDOW)
    return key if key in WINDOW_CHOICES else DEFAULT_WINDOW


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class DiagnosisGroup:
    """One exercise's diagnoses on the page: the first DIAGNOSES_SHOWN, and the others behind "show all"."""

    exercise_slug: str
    shown: list[Any]
    more: list[Any]

    @property
    def count(self) -> int:
        return len(self.shown) + len(self.more)


def diagnosis_groups(diagnoses: Iterable[Any], shown: int = DIAGNOSES_SHOWN) -> list[DiagnosisGroup]:
    """Group the diagnoses (already in page order) by exercise, keeping every one of them."""
    grouped: dict[str, list[Any]] = {}
    for row in diagnoses:
        grouped.setdefault(row.exercise_slug, []).append(row)
    return [DiagnosisGroup(slug, rows[:shown], rows[shown:]) for slug, rows in grouped.items()]


@dataclass(frozen=True)
class Table:
    """One exportable table: its rows (from a window) and its CSV columns."""

    title: str
    rows: Callable[[Window], Sequence[Any]]
    columns: Sequence[tuple[str, Callable[[Any], Any]]]


def _verdict_count(verdict: str) -> Callable[[Any], Any]:
    return lambda row: row.verdicts.get(verdict, 0)


def _verdict_columns() -> list[tuple[str, Callable[[Any], Any]]]:
    return [(verdict.value, _verdict_count(verdict.value)) for verdict in Verdict]


TABLES: dict[str, Table] = {
    "daily": Table(
        "Submissions per day",
        selectors.submissions_per_day,
        [
            ("day", lambda r: r.day.isoformat()),
            ("submissions", lambda r: r.submissions),
            ("accepted", lambda r: r.accepted),
        ],
    ),
    "exercises": Table(
        "Exercises",
        selectors.exercise_stats,
        [
            ("exercise", lambda r: r.slug),
            ("submissions", lambda r: r.submissions),
            ("graded", lambda r: r.graded),
            ("accepted", lambda r: r.accepted),
            ("pass_rate_percent", lambda r: _percent(r.pass_rate)),
            ("learners", lambda r: r.learners),
            ("learners_solved", lambda r: r.learners_solved),
            ("median_attempts_to_first_accept", lambda r: _number(r.median_attempts)),
            *_verdict_columns(),
        ],
    ),
    "diagnoses": Table(
        "Most common diagnoses",
        selectors.common_diagnoses,
        [
            ("exercise", lambda r: r.exercise_slug),
            ("output", lambda r: r.output),
            ("mistake", lambda r: r.mistake),
            ("wrong_answers", lambda r: r.submissions),
            ("share_of_wrong_answers_percent", lambda r: _percent(r.share)),
        ],
    ),
    "latency": Table(
        "Grading latency",
        selectors.grading_latency,
        [
            ("phase", lambda r: r.key),
            ("submissions", lambda r: r.count),
            ("p50_ms", lambda r: _number(r.p50_ms)),
            ("p95_ms", lambda r: _number(r.p95_ms)),
        ],
    ),
    "incidents": Table(
        "Sandbox incidents",
        lambda window: selectors.sandbox_incidents(course_id=window.course_id),
        [
            ("submission", lambda r: r.pk),
            ("created_at", lambda r: r.created_at.isoformat()),
            ("learner", lambda r: r.user.username),
            ("exercise", lambda r: r.exercise.slug),
            ("verdict", lambda r: r.verdict),
            ("worker", lambda r: r.worker),
            ("isolation", lambda r: r.isolation),
        ],
    ),
    "quiz": Table(
        "Quiz questions",
        lambda window: quiz_question_stats(course_id=window.course_id),
        [
            ("lesson", lambda r: r.lesson_slug),
            ("question", lambda r: r.key),
            ("kind", lambda r: r.kind),
            ("learners", lambda r: r.learners),
            ("percent_correct", lambda r: _number(r.percent_correct)),
            ("discrimination", lambda r: _number(r.discrimination, 2)),
            ("group_size", lambda r: r.group_size),
        ],
    ),
}


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def csv_response(name: str, rows: Iterable[list[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    lines = (writer.writerow(csv_row(row)) for row in rows)  # cells a spreadsheet would run get escaped
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="gradlab-{name}-{stamp}.csv"'
    return response


def _course_filter(request: HttpRequest) -> tuple[list[Any], Any]:
    """(the courses the user may filter on, the chosen one or None). Superusers may pick any course,
    others the courses they are staff of; any other `?course=` is a 404."""
    from courses.models import Course

    courses = Course.objects.order_by("title")
    if not request.user.is_superuser:
        courses = courses.filter(staff__user_id=int(request.user.pk or 0)).distinct()
    choices = list(courses)
    slug = request.GET.get("course", "")
    if not slug:
        return choices, None
    chosen = next((course for course in choices if course.slug == slug), None)
    if chosen is None:
        raise Http404("No such course (or not one of yours).")
    return choices, chosen


@staff_or_instructor_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page (each table also downloads as CSV from `dashboard_csv`)."""
    key = _window_key(request)
    courses, course = _course_filter(request)
    figures = dashboard_figures(
        WINDOW_CHOICES[key], refresh=request.GET.get("refresh") == "1", course_id=course.pk if course else None
    )
    incidents = selectors.sandbox_incidents(course_id=course.pk if course else None)
    context = {
        "figures": figures,
        "window": figures.window,
        "window_key": key,
        "window_choices": list(WINDOW_CHOICES),
        "courses": courses,
        "course": course,
        "course_query": f"&course={course.slug}" if course else "",
        "totals": figures.totals,
        "in_flight": selectors.in_flight(),
        "per_day": figures.per_day,
        "chart": {
            "labels": [row.day.isoformat() for row in figures.per_day],
            "submissions": [row.submissions for row in figures.per_day],
            "accepted": [row.accepted for row in figures.per_day],
        },
        "exercises": figures.exercises,
        "diagnoses": diagnosis_groups(figures.diagnoses),
        "latency": figures.latency,
        "incidents": [(incident, submission_url(incident.pk)) for incident in incidents],
        "quiz": figures.quiz,
        "tables": {name: table.title for name, table in TABLES.items()},
    }
    return render(request, "dashboard/dashboard.html", context)


@staff_or_instructor_required
def dashboard_csv(request: HttpRequest, table: str) -> HttpResponse | StreamingHttpResponse:
    """One dashboard table as CSV, for the same window as the page (`?days=`)."""
    spec = TABLES.get(table)
    if spec is None:
        raise Http404("no such table")
    _, course = _course_filter(request)
    window = window_of(WINDOW_CHOICES[_window_key(request)], course_id=course.pk if course else None)
    return csv_response(table, rows_for_csv(spec.rows(window), spec.columns))


@staff_or_instructor_required
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """Queue depth and live workers; a fragment for dashboard.js, or a page without JavaScript."""
    context = {"queue": live.queue_depth(), "workers": live.live_workers(), "checked_at": timezone.now()}
    if request.headers.get("X-Requested-With") == "fetch":
        return render(request, "dashboard/live_panel.html", context)
    return render(request, "dashboard/live_page.html", context)


def rows_for_csv(items: Iterable[Any], columns: Sequence[tuple[str, Any]]) -> Iterable[list[Any]]:
    """Header row, then one row per item; `columns` are (header, function of the item)."""
    yield [header for header, _ in columns]
    for item in items:
        yield [getter(item) for _, getter in columns]
