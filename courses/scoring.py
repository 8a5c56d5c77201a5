"""What counts: a learner's points on an assignment item from their submissions and quiz answers.

Pure functions over plain rows, so the rules read in one place and the gradebook,
the recompute and the regrade preview share them.

- Work before the assignment opens, or after the course ended, does not count.
- The learner's due time is their extension's, else the assignment's.
- Late work keeps `Assignment.late_factor` of its points (all, a per-day penalty, or nothing).
- Best: the most points after the late factor (the earliest of equals). Last: the most
  recent work that counts at all (so with a hard close, the last before the due time).
- Hints (exercise items): each hint revealed before the counting submission takes off the
  assignment's `hint_penalty_percent` of the item's points, after the late factor, never
  below 0. "Best" compares the points after that charge, so a learner's earlier work
  without hints can beat later work with them. Reveals after a submission never change
  what that submission is worth.
- A quiz item is the mean over its questions of each question's counted answer, times
  the item's points; an unanswered question counts 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from courses.models import Assignment, Counting, late_days


@dataclass(frozen=True)
class Work:
    """One graded piece of work: a submission (`submission_id`) or a quiz answer (`question_id`)."""

    at: datetime
    score: float  # 0..1
    submission_id: int | None = None
    question_id: int | None = None


@dataclass(frozen=True)
class Counted:
    """The counted outcome of one item for one learner. `points` is None when nothing counts yet."""

    points: float | None
    counted_at: datetime | None
    submission_id: int | None
    attempts: int
    is_late: bool
    late_days: int
    hints_charged: int = 0  # hints revealed before the counting submission
    hint_penalty: float = 0.0  # points they took off
    hints_seen: int = 0  # hints revealed at all


NOTHING = Counted(points=None, counted_at=None, submission_id=None, attempts=0, is_late=False, late_days=0)


def _plain(piece: Work, factor: float) -> float:
    return piece.score * factor


def _pick(
    assignment: Assignment,
    work: Iterable[Work],
    due_at: datetime,
    ended_at: datetime | None,
    value: Callable[[Work, float], float] = _plain,
) -> tuple[Work, float] | None:
    """The counting work and its late factor, or None. `value` is what "best" compares."""
    best: tuple[Work, float] | None = None
    for piece in sorted(work, key=lambda w: (w.at, w.submission_id or 0)):
        if ended_at is not None and piece.at > ended_at:
            continue
        factor = assignment.late_factor(piece.at, due_at)
        if factor is None:
            continue
        # Last: every later piece replaces the one before; best: only a strictly better one.
        if assignment.counting == Counting.LAST or best is None or value(piece, factor) > value(*best):
            best = (piece, factor)
    return best


def count_exercise(
    assignment: Assignment,
    points: float,
    *,
    work: Sequence[Work],
    due_at: datetime,
    ended_at: datetime | None,
    hint_times: Sequence[datetime] = (),
) -> Counted:
    """`hint_times`: when the learner revealed each hint of the exercise (any order)."""
    price = (assignment.hint_penalty_percent or 0.0) / 100.0 * points

    def hints_before(at: datetime) -> int:
        return sum(1 for moment in hint_times if moment < at)

    def net(piece: Work, factor: float) -> float:
        return max(0.0, piece.score * factor * points - hints_before(piece.at) * price)

    chosen = _pick(assignment, work, due_at, ended_at, net)
    if chosen is None:
        return Counted(None, None, None, len(work), False, 0, hints_seen=len(hint_times))
    piece, factor = chosen
    days = late_days(piece.at, due_at)
    charged = hints_before(piece.at)
    earned = piece.score * factor * points
    return Counted(
        points=round(net(piece, factor), 4),
        counted_at=piece.at,
        submission_id=piece.submission_id,
        attempts=len(work),
        is_late=days > 0,
        late_days=days,
        hints_charged=charged,
        hint_penalty=round(min(earned, charged * price), 4),
        hints_seen=len(hint_times),
    )


def count_quiz(
    assignment: Assignment,
    points: float,
    *,
    question_ids: Sequence[int],
    work: Sequence[Work],
    due_at: datetime,
    ended_at: datetime | None,
) -> Counted:
    if not question_ids:
        return NOTHING
    by_question: dict[int, list[Work]] = {}
    for piece in work:
        if piece.question_id is not None:
            by_question.setdefault(piece.question_id, []).append(piece)
    total = 0.0
    latest: datetime | None = None
    days = 0
    any_counted = False
    for question_id in question_ids:
        chosen = _pick(assignment, by_question.get(question_id, []), due_at, ended_at)
        if chosen is None:
            continue
        piece, factor = chosen
        any_counted = True
        total += piece.score * factor
        latest = piece.at if latest is None or piece.at > latest else latest
        days = max(days, late_days(piece.at, due_at))
    if not any_counted:
        return Counted(None, None, None, len(work), False, 0)
    return Counted(
        points=round(total / len(question_ids) * points, 4),
        counted_at=latest,
        submission_id=None,
        attempts=len(work),
        is_late=days > 0,
        late_days=days,
    )
