"""Reads for the exercise and submission pages and the API.

Access rule for submissions: a learner sees their own, staff see all, anyone else
gets None (the views answer 404, so ids reveal nothing).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Max, Q, QuerySet

from grader.models import Exercise, Submission, SubmissionStatus
from grader.services import SLUG_PATTERN
from grader.verdicts import Stage, Verdict

User = AbstractBaseUser | AnonymousUser

HISTORY_LIMIT = 20


def exercise_list() -> QuerySet[Exercise]:
    """Exercises that accept submissions, in the order of their lessons."""
    return (
        Exercise.objects.filter(is_active=True)
        .select_related("lesson")
        .order_by("lesson__order", "lesson__slug", "order", "slug")
    )


def exercise_get(slug: str) -> Exercise | None:
    """The active exercise with this slug, or None (also for a malformed slug)."""
    if not SLUG_PATTERN.fullmatch(slug):
        return None
    return Exercise.objects.filter(slug=slug, is_active=True).select_related("lesson").first()


def _can_see_all(user: User) -> bool:
    return bool(user.is_authenticated and getattr(user, "is_staff", False))


def submission_for_viewer(submission_id: int, user: User) -> Submission | None:
    """The submission if `user` may see it (its author, or staff), else None."""
    if not user.is_authenticated:
        return None
    submissions = Submission.objects.select_related("exercise", "exercise__lesson", "user")
    if not _can_see_all(user):
        submissions = submissions.filter(user_id=user.pk)
    return submissions.filter(pk=submission_id).first()


def submission_list_for_user(user: User, *, exercise_slug: str | None = None, limit: int = 20) -> list[Submission]:
    """The user's latest submissions, newest first (all exercises, or one)."""
    if not user.is_authenticated:
        return []
    submissions = Submission.objects.filter(user_id=user.pk).select_related("exercise")
    if exercise_slug is not None:
        submissions = submissions.filter(exercise__slug=exercise_slug)
    return list(submissions.order_by("-created_at", "-pk")[:limit])


def queue_position(submission: Submission) -> int | None:
    """1 for the next submission to be graded, 2 for the one after it...; None unless QUEUED."""
    if submission.status != SubmissionStatus.QUEUED:
        return None
    ahead = Submission.objects.filter(
        Q(created_at__lt=submission.created_at) | Q(created_at=submission.created_at, pk__lt=submission.pk),
        status=SubmissionStatus.QUEUED,
    ).count()
    return ahead + 1


def submission_history(user: User, exercise: Exercise, *, limit: int = HISTORY_LIMIT) -> list[Submission]:
    """The user's submissions to `exercise`, newest first, without their code and result."""
    if not user.is_authenticated:
        return []
    return list(
        Submission.objects.filter(user_id=user.pk, exercise=exercise)
        .defer("code", "result")
        .order_by("-attempt", "-pk")[:limit]
    )


def previous_submission(submission: Submission) -> Submission | None:
    """The same learner's submission to the same exercise just before this one."""
    return (
        Submission.objects.filter(
            user_id=submission.user_id, exercise_id=submission.exercise_id, attempt__lt=submission.attempt
        )
        .order_by("-attempt", "-pk")
        .only("pk", "attempt", "code", "verdict", "created_at")
        .first()
    )


def latest_code(user: User, exercise: Exercise) -> str | None:
    """The code of the user's latest submission to `exercise` (the editor opens on it), or None."""
    if not user.is_authenticated:
        return None
    return (
        Submission.objects.filter(user_id=user.pk, exercise=exercise)
        .order_by("-attempt", "-pk")
        .values_list("code", flat=True)
        .first()
    )


# --- Diff -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff: kind is "context", "added", "removed" or "hunk" (an @@ header)."""

    kind: str
    text: str
    old_number: int | None = None
    new_number: int | None = None


def code_diff(old: str, new: str, *, context: int = 3) -> list[DiffLine]:
    """A unified diff of two sources, line by line, with line numbers; [] when they are equal."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    lines: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        header = f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@"
        lines.append(DiffLine("hunk", header))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for offset, text in enumerate(old_lines[i1:i2]):
                    lines.append(DiffLine("context", text, i1 + offset + 1, j1 + offset + 1))
                continue
            if tag in {"replace", "delete"}:
                for offset, text in enumerate(old_lines[i1:i2]):
                    lines.append(DiffLine("removed", text, old_number=i1 + offset + 1))
            if tag in {"replace", "insert"}:
                for offset, text in enumerate(new_lines[j1:j2]):
                    lines.append(DiffLine("added", text, new_number=j1 + offset + 1))
    return lines


# --- Lesson page --------------------------------------------------------------------------


@dataclass
class ExerciseCard:
    """An exercise as the lesson page lists it, with what the user has done in it."""

    exercise: Exercise
    attempts: int = 0
    best_score: float | None = None
    accepted: bool = False

    @property
    def best_percent(self) -> int | None:
        return None if self.best_score is None else round(self.best_score * 100)


def exercises_for_lesson(lesson: Any, user: User) -> list[ExerciseCard]:
    """The lesson's active exercises in order, each with the user's attempts, best score and acceptance.

    Two queries whatever the number of exercises (one for a guest).
    """
    cards = [ExerciseCard(exercise) for exercise in Exercise.objects.filter(lesson=lesson, is_active=True)]
    if not user.is_authenticated or not cards:
        return cards
    stats = (
        Submission.objects.filter(user_id=user.pk, exercise__in=[card.exercise for card in cards])
        .values("exercise_id")
        .annotate(
            attempts=Count("id"),
            best=Max("score"),
            accepted=Count("id", filter=Q(verdict=Verdict.ACCEPTED.value)),
        )
        .order_by()
    )
    by_exercise = {row["exercise_id"]: row for row in stats}
    for card in cards:
        row = by_exercise.get(card.exercise.pk)
        if row:
            card.attempts = row["attempts"]
            card.best_score = row["best"]
            card.accepted = row["accepted"] > 0
    return cards


# --- Progress and verdict ----------------------------------------------------------------

PROGRESS_STAGES = (Stage.QUEUED, Stage.SANDBOX, Stage.CHECKS, Stage.TRAINING, Stage.DONE)


@dataclass
class ProgressStep:
    stage: Stage
    state: str  # "done", "current" or "todo"

    @property
    def label(self) -> str:
        return self.stage.label


def progress_steps(submission: Submission) -> list[ProgressStep]:
    """The five stages with the submission's place among them (every one "done" once finished)."""
    if submission.is_finished():
        return [ProgressStep(stage, "done") for stage in PROGRESS_STAGES]
    try:
        current = PROGRESS_STAGES.index(Stage(submission.stage))
    except ValueError:
        current = 0
    return [
        ProgressStep(stage, "done" if index < current else "current" if index == current else "todo")
        for index, stage in enumerate(PROGRESS_STAGES)
    ]


def progress_percent(submission: Submission) -> int:
    """How far along the grading is, for the progress bar: 100 once finished."""
    if submission.is_finished():
        return 100
    steps = progress_steps(submission)
    current = next((index for index, step in enumerate(steps) if step.state == "current"), 0)
    # Each stage counts as half done while it is under way.
    return round((current + 0.5) / len(PROGRESS_STAGES) * 100)


@dataclass
class ArrayRow:
    """One returned array in one check: its relative error against the tolerance."""

    name: str
    rel_error: float | None
    tolerance: float | None
    passed: bool | None
    worst: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CheckRow:
    name: str
    passed: bool
    message: str
    arrays: list[ArrayRow] = field(default_factory=list)
    label: str = ""


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _array_rows(check: dict[str, Any]) -> list[ArrayRow]:
    """Per-array errors of a check, whatever shape the engine gave them.

    Accepted shapes: `arrays`/`outputs` as a list of {"name", "rel_error", "tolerance",
    "passed", "worst"} or as {name: {...}}; or `rel_error` as {name: error} beside a
    single `tolerance`; or one `rel_error` number for the whole check.
    """
    rows: list[ArrayRow] = []
    tolerance = check.get("tolerance")
    for key in ("arrays", "outputs", "comparisons"):
        entries = check.get(key)
        if isinstance(entries, dict):
            entries = [{"name": name, **value} for name, value in entries.items() if isinstance(value, dict)]
        if isinstance(entries, list) and entries and all(isinstance(entry, dict) for entry in entries):
            for entry in entries:
                rows.append(
                    ArrayRow(
                        name=str(entry.get("name") or entry.get("array") or entry.get("output") or ""),
                        rel_error=_float_or_none(entry.get("rel_error")),
                        tolerance=_float_or_none(
                            entry.get("tolerance", tolerance if not isinstance(tolerance, dict) else None)
                        ),
                        passed=entry.get("passed"),
                        worst=list(entry.get("worst") or [])[:5],
                    )
                )
            return rows
    errors = check.get("rel_error")
    if isinstance(errors, dict):
        for name, error in errors.items():
            limit = tolerance.get(name) if isinstance(tolerance, dict) else tolerance
            error_value, limit_value = _float_or_none(error), _float_or_none(limit)
            passed = None if error_value is None or limit_value is None else error_value <= limit_value
            rows.append(ArrayRow(str(name), error_value, limit_value, passed))
    elif errors is not None:
        rows.append(ArrayRow("", _float_or_none(errors), _float_or_none(tolerance), check.get("passed")))
    return rows


@dataclass
class VerdictView:
    """What the verdict section shows, read from a result JSON."""

    verdict: str
    label: str
    accepted: bool
    score_percent: int | None
    feedback: str
    checks: list[CheckRow]
    diagnosis: list[dict[str, Any]]
    training: dict[str, Any] | None
    timings: dict[str, Any]
    isolation: str
    failed: bool = False
    grading_ms: int | None = None
    total_ms: int | None = None

    @property
    def has_chart(self) -> bool:
        return bool(self.training and self.training.get("learner_loss") and self.training.get("reference_loss"))


def verdict_view(submission: Submission) -> VerdictView | None:
    """The verdict of a finished submission, shaped for the template; None while it is being graded."""
    if not submission.is_finished():
        return None
    result: dict[str, Any] = submission.result if isinstance(submission.result, dict) else {}
    verdict = submission.verdict or str(result.get("verdict") or Verdict.INTERNAL_ERROR.value)
    try:
        label = Verdict(verdict).label
    except ValueError:
        label = verdict
    checks = []
    for check in result.get("checks") or []:
        if not isinstance(check, dict):
            continue
        checks.append(
            CheckRow(
                name=str(check.get("name", "")),
                passed=bool(check.get("passed")),
                message=str(check.get("message") or ""),
                arrays=_array_rows(check),
                label=str(check.get("label") or check.get("case") or ""),
            )
        )
    training = result.get("training") if isinstance(result.get("training"), dict) else None
    timings = result.get("timings")
    return VerdictView(
        verdict=verdict,
        label=label,
        accepted=verdict == Verdict.ACCEPTED.value,
        score_percent=None if submission.score is None else round(submission.score * 100),
        feedback=str(result.get("feedback") or ""),
        checks=checks,
        diagnosis=[entry for entry in result.get("diagnosis") or [] if isinstance(entry, dict)],
        training=training,
        timings=timings if isinstance(timings, dict) else {},
        isolation=submission.isolation or str(result.get("isolation") or ""),
        failed=submission.status == SubmissionStatus.FAILED,
        grading_ms=_milliseconds(submission.started_at, submission.finished_at),
        total_ms=_milliseconds(submission.created_at, submission.finished_at),
    )


def _milliseconds(start: Any, end: Any) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start).total_seconds() * 1000))


def chart_data(view: VerdictView | None) -> dict[str, Any] | None:
    """The training curves for the loss chart (Chart.js), or None when there is no training run."""
    if view is None or not view.has_chart or view.training is None:
        return None
    learner: Iterable[Any] = view.training.get("learner_loss") or []
    reference: Iterable[Any] = view.training.get("reference_loss") or []
    learner_list, reference_list = list(learner), list(reference)
    steps = view.training.get("steps") or list(range(max(len(learner_list), len(reference_list))))
    return {"steps": list(steps), "learner": learner_list, "reference": reference_list}
