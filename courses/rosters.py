"""Roster uploads: a CSV of usernames or email addresses, enrolled or invited all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from courses.models import (
    Course,
    CourseStaff,
    EnrollmentSource,
    RosterInvitation,
)
from courses.services import CourseConflict, CourseError, enrollment_ensure, require_staff


@dataclass
class RosterReport:
    """What a roster upload did (or, with errors, would have done: then nothing changed)."""

    enrolled: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    invited: list[RosterInvitation] = field(default_factory=list)
    invited_before: int = 0  # of `invited`, those that had their invitation from an earlier upload
    skipped: list[str] = field(default_factory=list)  # rows that changed nothing, and why
    errors: list[str] = field(default_factory=list)


ROSTER_MAX_BYTES = 1024 * 1024
ROSTER_MAX_ROWS = 5000


def roster_upload(course: Course, *, by: Any, data: bytes) -> RosterReport:
    """Enroll the accounts a CSV names (one username or email per row, first column; a header is
    optional) and invite the addresses that have no account yet.

    All or nothing: if any row is bad (an unknown username, a malformed address), nothing
    changes and `errors` says which rows, by line number.
    """
    require_staff(by, course)
    report = RosterReport()
    if course.is_ended():
        raise CourseConflict(f"The course {course.slug} has ended; it takes no new learners.")
    if len(data) > ROSTER_MAX_BYTES:
        raise CourseError(f"The roster is {len(data) / 1024:.0f} KiB; the limit is 1 MiB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CourseError("The roster is not UTF-8 text; export it from your spreadsheet as CSV (UTF-8).") from None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) > ROSTER_MAX_ROWS:
        raise CourseError(f"The roster has {len(rows)} rows; the limit is {ROSTER_MAX_ROWS}.")
    users = get_user_model().objects
    to_enroll: dict[int, str] = {}
    to_invite: list[str] = []
    first_line: dict[object, int] = {}  # a user's pk or an invited address -> the line that named it first
    for number, row in enumerate(rows, start=1):
        value = row[0].strip() if row else ""
        if not value or (number == 1 and value.lower() in {"username", "email", "login", "user"}):
            continue
        if "@" in value:
            try:
                validate_email(value)
            except ValidationError:
                report.errors.append(f"line {number}: {value!r} is not an email address")
                continue
            user = users.filter(email__iexact=value).order_by("pk").first()
            if user is None:
                if _first(first_line, value.lower(), number, value, report):
                    to_invite.append(value.lower())
                continue
        else:
            user = users.filter(username=value).first()
            if user is None:
                report.errors.append(f"line {number}: there is no account {value!r} (give an email to invite)")
                continue
        if _first(first_line, user.pk, number, value, report):
            to_enroll[user.pk] = value
    if report.errors:
        return report
    staff_ids = set(CourseStaff.objects.filter(course=course).values_list("user_id", flat=True))
    with transaction.atomic():
        for user_id, name in to_enroll.items():
            if user_id in staff_ids:
                report.skipped.append(f"line {first_line[user_id]}: {name} is on the course's staff, not enrolled")
                continue
            _, created = enrollment_ensure(course, user_id, EnrollmentSource.ROSTER)
            (report.enrolled if created else report.already).append(name)
        for email in dict.fromkeys(to_invite):
            invitation, created = RosterInvitation.objects.get_or_create(
                course=course, email=email, defaults={"invited_by_id": by.pk}
            )
            report.invited.append(invitation)
            report.invited_before += not created
    return report


def _first(first_line: dict[object, int], key: object, number: int, value: str, report: RosterReport) -> bool:
    """Whether line `number` is the first to name this account or address; a repeat goes to `skipped`."""
    if key in first_line:
        report.skipped.append(f"line {number}: {value} is the same person as line {first_line[key]}, listed once")
        return False
    first_line[key] = number
    return True
