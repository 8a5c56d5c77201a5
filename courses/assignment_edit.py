"""Changing an assignment's title, times and rules from its page (owners and instructors).

Checked as on creation (courses.rules); a change of what counts recounts every learner, as a change in
the admin does (audit log cause "recompute", with who and which fields), and changed totals go to the LMS.
The items are not changed here: a regrade or an override handles a wrong item.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from courses.models import Assignment, LatePolicy
from courses.rules import SCORING_FIELDS, assignment_rules_problem
from courses.services import CourseError, assignment_scores_recount, require_staff

FIELD_NAMES = {
    "title": "title",
    "opens_at": "open time",
    "due_at": "due time",
    "late_policy": "late policy",
    "late_penalty_percent": "late penalty",
    "counting": "counting",
    "hint_penalty_percent": "hint price",
}


def assignment_update(
    assignment: Assignment,
    *,
    by: Any,
    title: str,
    opens_at: datetime,
    due_at: datetime,
    late_policy: str,
    late_penalty_percent: float,
    counting: str,
    hint_penalty_percent: float,
) -> tuple[list[str], int]:
    """Store the new values; return the names of the fields that changed and how many learners were recounted.

    Raises CourseError (nothing changed) for values an assignment cannot have.
    """
    require_staff(by, assignment.course, manage=True)
    values: dict[str, Any] = {
        "title": (title or "").strip(),
        "opens_at": opens_at,
        "due_at": due_at,
        "late_policy": late_policy,
        "late_penalty_percent": late_penalty_percent,
        "counting": counting,
        "hint_penalty_percent": hint_penalty_percent,
    }
    problem = assignment_rules_problem(**values)
    if problem:
        raise CourseError(problem)
    if late_policy != LatePolicy.PENALTY_PER_DAY:
        values["late_penalty_percent"] = 0.0  # as on creation: no penalty without that policy
    with transaction.atomic():
        row = Assignment.objects.select_for_update().select_related("course").get(pk=assignment.pk)
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if not changed:
            return [], 0
        for name in changed:
            setattr(row, name, values[name])
        row.save(update_fields=changed)
        rules = [FIELD_NAMES[name] for name in changed if name in SCORING_FIELDS]
        recounted = 0
        if rules:
            reason = f"Assignment changed: {', '.join(rules)}"
            recounted = assignment_scores_recount(row, by_id=by.pk, reason=reason)
    return [FIELD_NAMES[name] for name in changed], recounted


def form_values(assignment: Assignment) -> dict[str, str]:
    """The change form's values as stored, the times in UTC: the page's script shows them in the browser's
    zone (from the `*_iso` values); without it they go back as UTC, with the form's tz_offset of 0."""
    utc = {name: getattr(assignment, name).astimezone(UTC) for name in ("opens_at", "due_at")}
    return {
        "title": assignment.title,
        **{name: at.strftime("%Y-%m-%dT%H:%M") for name, at in utc.items()},
        **{f"{name}_iso": at.strftime("%Y-%m-%dT%H:%M:%SZ") for name, at in utc.items()},
        "late_policy": assignment.late_policy,
        "late_penalty_percent": f"{assignment.late_penalty_percent:g}",
        "counting": assignment.counting,
        "hint_penalty_percent": f"{assignment.hint_penalty_percent:g}",
    }
