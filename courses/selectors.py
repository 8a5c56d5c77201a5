"""Reads of the courses app: a user's courses, what a viewer may see, the gradebook.

Access: a course's staff (any role) see its learners, their work and the gradebook;
superusers see every course; a learner sees only their own rows. Everyone else gets
nothing: the functions return None, and views answer 404 (not 403, so a course's
existence does not leak to the staff of another course).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import CharField, Count, Prefetch
from django.db.models.functions import Cast
from django.utils import timezone

from courses.models import (
    Assignment,
    AssignmentItem,
    AssignmentScore,
    Course,
    CourseStaff,
    Enrollment,
    Extension,
    GradeChange,
    ItemKind,
    ItemScore,
    RegradeJob,
    RegradeMode,
    RegradeStatus,
    SubmissionRegrade,
)
from courses.services import staff_role


@dataclass
class CourseAccess:
    """A course and what the viewer is in it: `role` (a CourseRole value) for staff, else a learner."""

    course: Course
    role: str | None
    enrolled: bool

    @property
    def is_staff(self) -> bool:
        return self.role is not None

    @property
    def can_manage(self) -> bool:
        return self.role in {"owner", "instructor"}


def course_access(slug: str, user: Any) -> CourseAccess | None:
    """The course with this slug if the user is its staff or enrolled in it (or a superuser), else None."""
    if not user.is_authenticated:
        return None
    course = Course.objects.filter(slug=slug).first()
    if course is None:
        return None
    role = staff_role(user, course)
    enrolled = Enrollment.objects.filter(course=course, user_id=user.pk).exists()
    if role is None and not enrolled:
        return None
    return CourseAccess(course=course, role=role, enrolled=enrolled)


def courses_for_user(user: Any) -> tuple[list[Course], list[Course]]:
    """(courses the user teaches, courses the user is enrolled in), newest first."""
    if not user.is_authenticated:
        return [], []
    teaching = list(Course.objects.filter(staff__user_id=user.pk).distinct())
    learning = list(Course.objects.filter(enrollments__user_id=user.pk).distinct())
    return teaching, learning


@dataclass
class LearnerAssignment:
    """An assignment as one learner sees it: their due time, their total and what counts."""

    assignment: Assignment
    due_at: datetime
    extended: bool
    score: float | None
    max_score: float
    is_late: bool
    items: list[tuple[AssignmentItem, ItemScore | None]] = field(default_factory=list)

    def is_past_due(self) -> bool:
        return timezone.now() > self.due_at


def learner_assignments(user: Any, *, courses: Iterable[Course] | None = None) -> list[LearnerAssignment]:
    """The assignments of the user's courses with the user's due times and scores, soonest due first."""
    if not user.is_authenticated:
        return []
    course_ids = (
        [course.pk for course in courses]
        if courses is not None
        else list(Enrollment.objects.filter(user_id=user.pk).values_list("course_id", flat=True))
    )
    assignments = list(
        Assignment.objects.filter(course_id__in=course_ids)
        .select_related("course")
        .prefetch_related(Prefetch("items", queryset=AssignmentItem.objects.select_related("exercise", "lesson")))
    )
    extensions = dict(
        Extension.objects.filter(assignment__in=assignments, learner_id=user.pk).values_list("assignment_id", "due_at")
    )
    totals = {row.assignment_id: row for row in AssignmentScore.objects.filter(learner_id=user.pk)}
    item_scores = {
        row.item_id: row for row in ItemScore.objects.filter(item__assignment__in=assignments, learner_id=user.pk)
    }
    result = []
    for assignment in assignments:
        total = totals.get(assignment.pk)
        items = list(assignment.items.all())
        result.append(
            LearnerAssignment(
                assignment=assignment,
                # An extension never moves the due time earlier (the assignment's may have moved past it).
                due_at=max(extensions.get(assignment.pk, assignment.due_at), assignment.due_at),
                extended=extensions.get(assignment.pk, assignment.due_at) > assignment.due_at,
                score=total.score if total else None,
                max_score=float(sum(item.points for item in items)),
                is_late=bool(total and total.is_late),
                items=[(item, item_scores.get(item.pk)) for item in items],
            )
        )
    result.sort(key=lambda row: (row.due_at, row.assignment.pk))
    return result


# --- Gradebook ---------------------------------------------------------------------------


@dataclass
class GradebookColumn:
    item: AssignmentItem
    assignment: Assignment

    @property
    def key(self) -> str:
        return f"a{self.assignment.pk}i{self.item.pk}"

    @property
    def header(self) -> str:
        return f"{self.assignment.title}: {self.item.label()}"

    @property
    def sort_key(self) -> str:
        """The gradebook's `sort` value for this column (descending with a leading '-')."""
        return f"item:{self.item.pk}"


# A cell: one learner's score on one item as the page and the CSV show it, the score query's row as it
# comes, in CELL_COLUMNS' order: (learner id, item id, points, override points, counting time, late,
# hints charged, hint penalty). The counting time is the database's UTC text ("2027-03-01 16:59:00.123456"
# in SQLite, "...+00" in PostgreSQL; iso_utc); late is a bool, or 0 or 1 from SQLite. The JSON reads
# every column of the scores (gradebook_json).
#
# 9,000 cells (300 x 30) are the gradebook's cost, so each is as cheap as it gets: only the columns the
# page shows (every column read costs); the time as text (converting datetimes to Python and back to
# text costs more than the rest of the gradebook); and plain tuples, which the garbage collector stops
# tracking (it keeps following named tuples and dataclasses, so 9,000 of them a page make it walk the
# whole heap every few pages).
Cell = tuple[int, int, float | None, float | None, str | None, int, int, float]
CELL_COLUMNS = (
    "learner_id",
    "item_id",
    "points",
    "override_points",
    "counted_text",
    "is_late",
    "hints_charged",
    "hint_penalty",
)
POINTS: Final = 2  # where a Cell has its points (CELL_COLUMNS)


def iso_utc(text: str) -> str:
    """'2027-03-01 16:59:00.123456' or '...+00' (UTC text from SQLite or PostgreSQL) -> '2027-03-01T16:59:00Z'."""
    return f"{text[:10]}T{text[11:19]}Z"


def _scores(items: Iterable[AssignmentItem], columns: Iterable[str]) -> list[tuple[Any, ...]]:
    """The score rows of these items as tuples of `columns`; "counted_text" is the counting time as UTC text.

    The rows come straight from the cursor: Django's conversion of each row (on SQLite, 0/1 to a
    bool; nothing on PostgreSQL) takes a third of the time of reading them.
    """
    query = (
        ItemScore.objects.filter(item__in=items)
        .annotate(counted_text=Cast("counted_at", CharField()))
        .values_list(*columns)
    )
    sql, params = query.query.sql_with_params()
    with connections[query.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass
class GradebookRow:
    learner_id: int
    username: str
    email: str
    full_name: str
    cells: list[Cell | None]  # one per column, None where the learner has no score on the item
    total: float
    late_count: int
    item_ids: list[int] = field(default_factory=list)


@dataclass
class Gradebook:
    course: Course
    columns: list[GradebookColumn]
    rows: list[GradebookRow]
    max_total: float


SORT_KEYS = {"name", "-name", "total", "-total", "late", "-late"}
# Also "item:<id>" and "-item:<id>": by the points on one item (no work sorts below 0).

# What the columns show of their items: not the exercises' statements, code and reports.
ITEM_FIELDS = (
    *("order", "kind", "points", "assignment", "exercise", "lesson"),
    *("assignment__title", "assignment__due_at", "exercise__slug", "exercise__title", "lesson__slug", "lesson__title"),
)


def gradebook(
    course: Course,
    *,
    assignment_id: int | None = None,
    search: str = "",
    late_only: bool = False,
    sort: str = "name",
) -> Gradebook:
    """Learners (enrolled) by items of the course's assignments (or one assignment), with points, the
    time of the counting work and late flags, and each learner's total. Three queries whatever the size.

    `search` keeps learners whose username, name or email contains it; `late_only` those
    with a late item; `sort` is one of SORT_KEYS (a leading '-' reverses).
    """
    assignments = Assignment.objects.filter(course=course).order_by("due_at", "id")
    if assignment_id is not None:
        assignments = assignments.filter(pk=assignment_id)
    items = list(
        AssignmentItem.objects.filter(assignment__in=assignments)
        .select_related("assignment", "exercise", "lesson")
        .only(*ITEM_FIELDS)
        .order_by("assignment__due_at", "assignment_id", "order", "id")
    )
    columns = [GradebookColumn(item=item, assignment=item.assignment) for item in items]
    learners = (
        get_user_model()
        .objects.filter(enrollments__course=course)
        .order_by("username")
        .values_list("pk", "username", "email", "first_name", "last_name")
    )
    if search:
        from django.db.models import Q

        learners = learners.filter(
            Q(username__icontains=search)
            | Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    learner_rows = list(learners)
    item_ids = [column.item.pk for column in columns]
    column_of = {item_id: index for index, item_id in enumerate(item_ids)}
    cells_of: dict[int, list[Cell | None]] = {row[0]: [None] * len(item_ids) for row in learner_rows}
    for score in _scores(items, CELL_COLUMNS):
        cells = cells_of.get(score[0])
        if cells is not None:  # else not enrolled any more, or not found by the search
            cells[column_of[score[1]]] = score
    rows = []
    for pk, username, email, first, last in learner_rows:
        cells = cells_of[pk]
        total: float = 0  # as sum() adds: 0 for a learner without scores
        late_items = 0
        for cell in cells:
            if cell is not None:
                _, _, points, override, _, is_late, _, _ = cell
                total += points or 0.0
                late_items += bool(is_late and override is None)
        rows.append(
            GradebookRow(
                learner_id=pk,
                username=username,
                email=email,
                full_name=f"{first} {last}".strip(),
                cells=cells,
                total=round(total, 4),
                late_count=late_items,
                item_ids=item_ids,
            )
        )
    if late_only:
        rows = [row for row in rows if row.late_count]
    key = sort.lstrip("-") if sort in SORT_KEYS else "name"
    reverse = sort.startswith("-") and sort in SORT_KEYS
    item_sort = sort.lstrip("-").removeprefix("item:")
    if sort.lstrip("-").startswith("item:") and item_sort.isdigit() and int(item_sort) in column_of:
        index = column_of[int(item_sort)]

        def item_points(row: GradebookRow) -> tuple[float, str]:
            cell = row.cells[index]
            return (-1.0 if cell is None else cell[POINTS] or 0.0), row.username

        rows.sort(key=item_points, reverse=sort.startswith("-"))
    elif key == "total":
        rows.sort(key=lambda row: (row.total, row.username), reverse=reverse)
    elif key == "late":
        rows.sort(key=lambda row: (row.late_count, row.username), reverse=reverse)
    else:
        rows.sort(key=lambda row: row.username, reverse=reverse)
    return Gradebook(course=course, columns=columns, rows=rows, max_total=float(sum(item.points for item in items)))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ tab or CR gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def points_text(points: float | None) -> str:
    if points is None:
        return ""
    return f"{points:.2f}".rstrip("0").rstrip(".")


def gradebook_csv(book: Gradebook) -> str:
    """One row per learner: identity columns Canvas and Moodle match on, then one column per item, then the total.

    Canvas's import matches `Student`, `ID`, `SIS User ID`, `SIS Login ID` and `Section`, and
    reads each further column whose header ends in the assignment's points as a grade;
    Moodle's import maps any column to a grade item and matches users by `Username` or
    `Email address`. Both read the same file.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    headers = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Username", "Email address"]
    headers += [f"{column.header} ({column.item.points:g})" for column in book.columns]
    headers += [f"Total ({book.max_total:g})"]
    writer.writerow([csv_safe(header) for header in headers])
    shown: dict[float | None, str] = {}  # points repeat across a gradebook: each value is written out once
    for row in book.rows:
        identity = [row.full_name or row.username, row.learner_id, "", row.username, book.course.slug]
        values = [csv_safe(value) for value in [*identity, row.username, row.email]]
        for cell in row.cells:
            points = None if cell is None else cell[POINTS]
            text = shown.get(points)
            if text is None:
                text = shown[points] = csv_safe(points_text(points))
            values.append(text)
        values.append(csv_safe(points_text(row.total)))
        writer.writerow(values)
    return out.getvalue()


def gradebook_json(book: Gradebook) -> dict[str, Any]:
    """The gradebook for the API: its items, and per learner the total and every cell with all of its
    score (what the page shows, and the computed points, counting submission, late days, attempts)."""
    scores = {(score[0], score[1]): score for score in _scores([column.item for column in book.columns], JSON_COLUMNS)}
    return {
        "course": book.course.slug,
        "max_total": book.max_total,
        "items": [
            {
                "key": column.key,
                "assignment_id": column.assignment.pk,
                "assignment": column.assignment.title,
                "item_id": column.item.pk,
                "kind": column.item.kind,
                "slug": column.item.slug(),
                "title": column.item.label(),
                "points": column.item.points,
                "due_at": column.assignment.due_at,
            }
            for column in book.columns
        ],
        "learners": [
            {
                "id": row.learner_id,
                "username": row.username,
                "email": row.email,
                "total": row.total,
                "late_items": row.late_count,
                "cells": [_score_json(scores.get((row.learner_id, item_id))) for item_id in row.item_ids],
            }
            for row in book.rows
        ],
    }


# The score columns of a cell in the JSON, in _score_json's order.
JSON_COLUMNS = (
    "learner_id",
    "item_id",
    "points",
    "computed_points",
    "override_points",
    "counted_text",
    "submission_id",
    "is_late",
    "late_days",
    "attempts",
    "hints_charged",
    "hint_penalty",
)


def _score_json(score: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if score is None:
        return None
    _, _, points, computed, override, counted, submission_id, is_late, days, attempts, hints, penalty = score
    return {
        "points": points,
        "computed_points": computed,
        "overridden": override is not None,
        "counted_at": iso_utc(counted) if counted else None,
        "submission_id": submission_id,
        "late": bool(is_late),
        "late_days": days,
        "attempts": attempts,
        "hints_charged": hints,
        "hint_penalty": penalty,
    }


def grade_changes(course: Course, *, learner_id: int | None = None, limit: int = 200) -> list[GradeChange]:
    changes = GradeChange.objects.filter(item__assignment__course=course).select_related(
        "item__assignment", "item__exercise", "item__lesson", "learner", "changed_by"
    )
    if learner_id is not None:
        changes = changes.filter(learner_id=learner_id)
    return list(changes[:limit])


def course_staff(course: Course) -> list[CourseStaff]:
    return list(CourseStaff.objects.filter(course=course).select_related("user").order_by("role", "user__username"))


def regrade_jobs(assignment: Assignment) -> list[RegradeJob]:
    return list(RegradeJob.objects.filter(assignment=assignment)[:20])


@dataclass(frozen=True)
class OutdatedItem:
    """An exercise item whose grading changed after some of the assignment's submissions were graded."""

    item: AssignmentItem
    changed_at: datetime
    submissions: int
    learners: int


def outdated_items(assignment: Assignment) -> list[OutdatedItem]:
    """Exercise items with graded submissions of enrolled learners older than the exercise's grading.

    A submission stops counting here once an applied regrade finished it after the change.
    """
    from grader.models import Submission, SubmissionStatus

    learners = Enrollment.objects.filter(course_id=assignment.course_id).values("user_id")
    found = []
    items = assignment.items.filter(kind=ItemKind.EXERCISE, exercise__grading_changed_at__isnull=False)
    for item in items.select_related("exercise").order_by("order", "pk"):
        changed_at = item.exercise.grading_changed_at if item.exercise is not None else None
        if changed_at is None:  # excluded by the filter; says so to the type checker
            continue
        regraded = SubmissionRegrade.objects.filter(
            job__mode=RegradeMode.APPLY, status=RegradeStatus.DONE, finished_at__gte=changed_at
        ).values("submission_id")
        stale = (
            Submission.objects.filter(
                user_id__in=learners,
                exercise_id=item.exercise_id,
                status=SubmissionStatus.GRADED,
                created_at__gte=assignment.opens_at,
                finished_at__lt=changed_at,
            )
            .exclude(pk__in=regraded)
            .aggregate(submissions=Count("pk"), learners=Count("user_id", distinct=True))
        )
        if stale["submissions"]:
            found.append(OutdatedItem(item, changed_at, stale["submissions"], stale["learners"]))
    return found
