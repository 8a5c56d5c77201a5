"""An assignment's title, times and rules: what they may be, checked the same way when an assignment is
created (services.assignment_create) and when it is changed (assignment_edit.assignment_update)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from courses.models import Counting, LatePolicy

# Changing one of these changes what counts: every learner's score is recounted (audit log cause "recompute").
SCORING_FIELDS = ["opens_at", "due_at", "late_policy", "late_penalty_percent", "counting", "hint_penalty_percent"]


def assignment_rules_problem(
    *,
    title: str,
    opens_at: datetime,
    due_at: datetime,
    late_policy: str,
    late_penalty_percent: float,
    counting: str,
    hint_penalty_percent: float,
) -> str | None:
    """Why these values cannot be an assignment's, in one sentence; None when they can."""
    if not title or len(title) > 200:
        return "The title must be 1-200 characters."
    if timezone.is_naive(opens_at) or timezone.is_naive(due_at):
        return "Give times with a time zone, e.g. 2027-03-01T17:00:00+01:00."
    if due_at <= opens_at:
        return "The due time must be after the open time."
    if late_policy not in LatePolicy.values:
        return f"Unknown late policy {late_policy!r}: none, penalty_per_day or hard_close."
    if counting not in Counting.values:
        return f"Unknown counting {counting!r}: best or last."
    if not (0 <= late_penalty_percent <= 100):
        return "The late penalty must be 0-100 percent per day."
    if not (0 <= hint_penalty_percent <= 100):
        return "The hint penalty must be 0-100 percent of an item's points per hint."
    return None
