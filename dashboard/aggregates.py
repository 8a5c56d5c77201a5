"""The dashboard's building blocks: SQL functions both backends run, percentiles, the time window.

`DayOf` and `SecondsBetween` compile to native SQL on SQLite and PostgreSQL (no Python
per row); `PercentileCont` is PostgreSQL's ordered-set aggregate; `percentile`
(gradlab/stats.py) and `median_of_histogram` compute the same percentile
(linear interpolation) in Python where SQL cannot (SQLite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import FloatField, Func
from django.db.models.expressions import Combinable
from django.db.models.fields import DateField, Field
from django.utils import timezone

from grader.models import Submission


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


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class Window:
    """The period the dashboard looks at: the last `days` days, or everything (days=None); with
    `course_id`, only the submissions of that course's enrolled learners."""

    days: int | None
    now: datetime
    course_id: int | None = None

    @property
    def since(self) -> datetime | None:
        return None if self.days is None else self.now - timedelta(days=self.days)

    def submissions(self) -> Any:
        rows = Submission.objects.order_by()
        if self.course_id is not None:
            rows = rows.filter(user_id__in=self.learners())
        return rows if self.since is None else rows.filter(created_at__gte=self.since)

    def learners(self) -> Any:
        """The user ids of the course's learners (a subquery), or None without a course."""
        from courses.models import Enrollment

        return Enrollment.objects.filter(course_id=self.course_id or 0).values("user_id")

    def learner_sql(self, column: str = "user_id") -> tuple[str, list[Any]]:
        """(' AND <column> IN (the course's learners)', its parameters) for raw SQL; ('', []) without a course."""
        if self.course_id is None:
            return "", []
        from courses.models import Enrollment

        table = Enrollment._meta.db_table
        return f" AND {column} IN (SELECT user_id FROM {table} WHERE course_id = %s)", [self.course_id]  # noqa: S608 - table name from the model, column from code

    @property
    def label(self) -> str:
        return "all time" if self.days is None else f"last {self.days} days"


def window_of(days: int | None, now: datetime | None = None, course_id: int | None = None) -> Window:
    return Window(days=days, now=now or timezone.now(), course_id=course_id)
