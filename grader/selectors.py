"""Reads for the exercise and submission pages and the API.

Access rule for submissions: a learner sees their own, site staff see all, a course's staff
see its learners' work on its exercises (`teaches`); anyone else gets None (the views answer
404, so ids reveal nothing).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Max, Q, QuerySet

from courses.models import AssignmentItem
from grader.diagnosis import Diagnosis, Mistake
from grader.models import Exercise, Submission, SubmissionStatus
from grader.result import CheckResult
from grader.verdicts import Stage, Verdict
from gradlab.slugs import is_slug

User = AbstractBaseUser | AnonymousUser

HISTORY_LIMIT = 20


def exercise_list() -> QuerySet[Exercise]:
    """Exercises that accept submissions, in the order of their lessons."""
    return (
        Exercise.objects.filter(is_active=True)
        .select_related("lesson")
        .order_by("lesson__order", "lesson__slug", "order", "slug")
    )


def next_exercise(exercise: Exercise) -> Exercise | None:
    """The exercise after this one in /exercises/'s order, or None for the last."""
    ordered = list(exercise_list().only("pk", "slug", "title", "order", "lesson__order", "lesson__slug"))
    ids = [item.pk for item in ordered]
    if exercise.pk not in ids:
        return None
    index = ids.index(exercise.pk)
    return ordered[index + 1] if index + 1 < len(ordered) else None


def exercise_get(slug: str) -> Exercise | None:
    """The active exercise with this slug, or None (also for a malformed slug)."""
    if not is_slug(slug):
        return None
    return Exercise.objects.filter(slug=slug, is_active=True).select_related("lesson").first()


def _can_see_all(user: User) -> bool:
    return bool(user.is_authenticated and getattr(user, "is_staff", False))


def teaches(user: User, submission: Submission) -> bool:
    """Whether `user` is on the staff (any role) of a course that has the submission's author enrolled
    and its exercise in one of its assignments: the work that course's gradebook shows them."""
    if not user.is_authenticated:
        return False
    return AssignmentItem.objects.filter(
        exercise_id=submission.exercise_id,
        assignment__course__staff__user_id=user.pk,
        assignment__course__enrollments__user_id=submission.user_id,
    ).exists()


def submission_for_viewer(submission_id: int, user: User) -> Submission | None:
    """The submission if `user` may see it (its author, site staff, or its course's staff: `teaches`), else None."""
    if not user.is_authenticated:
        return None
    submission = (
        Submission.objects.select_related("exercise", "exercise__lesson", "user").filter(pk=submission_id).first()
    )
    if submission is None:
        return None
    if submission.user_id == user.pk or _can_see_all(user) or teaches(user, submission):
        return submission
    return None


def can_see_hint_reveals(user: User, submission: Submission) -> bool:
    """Whether `user` may see which hints the submission's author revealed: the author, a superuser,
    or the staff of the author's course (`teaches`). Site staff of no such course may not (a teaching
    assistant of another course is often `is_staff` to open the dashboard)."""
    if not user.is_authenticated:
        return False
    return submission.user_id == user.pk or bool(getattr(user, "is_superuser", False)) or teaches(user, submission)


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
    return exercise_cards(Exercise.objects.filter(lesson=lesson, is_active=True), user)


def exercise_cards(exercises: Any, user: User) -> list[ExerciseCard]:
    """A card per exercise, in the given order, with the user's attempts, best score and acceptance (one query)."""
    cards = [ExerciseCard(exercise) for exercise in exercises]
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


def _training_ran(submission: Submission) -> bool:
    training = [check for check in submission.grade_result().checks if check.name == "training"]
    return bool(training) and not _is_skipped(training[0].message)


def progress_steps(submission: Submission) -> list[ProgressStep]:
    """The five stages with the submission's place among them.

    Once finished every stage is "done", except a training run that did not run
    (skipped after a failed check, or stopped before it): "skipped".
    """
    if submission.is_finished():
        ran = _training_ran(submission)
        return [
            ProgressStep(stage, "skipped" if stage == Stage.TRAINING and not ran else "done")
            for stage in PROGRESS_STAGES
        ]
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


# The engine's check names, as a learner reads them.
CHECK_TITLES = {
    "load": "Your file loads",
    "signature": "Function signature",
    "outputs": "Returned values (types and shapes)",
    "no_inplace": "Inputs left unchanged",
    "autograd": "Gradients against PyTorch autograd",
    "numerical": "Gradients against finite differences",
    "edge_cases": "Edge case",
    "training": "Training run",
}
SKIPPED_PREFIX = "skipped:"


def check_title(name: str) -> str:
    """A check's name in the learner's words ("no_inplace" -> "Inputs left unchanged")."""
    base, _, case = name.partition(":")
    title = CHECK_TITLES.get(base.strip(), base.replace("_", " ").strip().capitalize())
    return f"{title}: {case.strip()}" if case.strip() else title


def _is_skipped(message: str) -> bool:
    return message.lower().startswith(SKIPPED_PREFIX)


def _lower_first(title: str) -> str:
    """A title inside a sentence: "Gradients against PyTorch autograd" -> "gradients against PyTorch autograd"."""
    return title[:1].lower() + title[1:]


def _learner_words(text: str) -> str:
    """ "the no_inplace check" -> "the “inputs left unchanged” check"."""
    for name, title in CHECK_TITLES.items():
        text = re.sub(rf"\bthe {name} check\b", f"the “{_lower_first(title)}” check", text)
    return text


@dataclass
class CheckRow:
    name: str
    passed: bool
    message: str
    arrays: list[ArrayRow] = field(default_factory=list)
    label: str = ""
    skipped: bool = False

    @property
    def title(self) -> str:
        return check_title(self.name)

    @property
    def row_span(self) -> int:
        """The table rows of a check with arrays: one per array, and one for its message under them."""
        return len(self.arrays) + (1 if self.message else 0)


def _check_row(check: CheckResult) -> CheckRow:
    """A check as the table shows it: one row per compared array, or one for the check's own error.

    A check that did not run ("skipped: ...") shows why, and no errors or tolerances.
    """
    if _is_skipped(check.message):
        reason = _learner_words(check.message[len(SKIPPED_PREFIX) :].strip())
        message = f"Not run: {reason}." if reason else "Not run."
        return CheckRow(check.name, False, message, [], check.label, skipped=True)
    if check.arrays:
        arrays = [ArrayRow(a.name, a.rel_error, a.tolerance, a.passed) for a in check.arrays]
    elif check.rel_error is not None:
        arrays = [ArrayRow("", check.rel_error, check.tolerance, check.passed)]
    else:
        arrays = []
    return CheckRow(check.name, check.passed, _learner_words(check.message), arrays, check.label)


def _summary(checks: list[CheckRow], diagnosis: list[Diagnosis]) -> str:
    """One sentence over the checks in the learner's words; the diagnosis (with its hint) is shown apart."""
    run = [check for check in checks if not check.skipped]
    passed = sum(1 for check in run if check.passed)
    if passed == len(checks):
        return f"All {len(checks)} checks passed."
    titles = (check_title(check.name).split(":")[0] for check in run if not check.passed)
    failed = list(dict.fromkeys(_lower_first(title) for title in titles))
    sentence = f"{passed} of {len(checks)} checks passed"
    sentence += f"; failed: {', '.join(failed)}" if failed else ""
    skipped = len(checks) - len(run)
    sentence += f"; {skipped} not run" if skipped else ""
    named = [entry for entry in diagnosis if entry.mistake != Mistake.UNKNOWN and entry.title]
    if named:
        sentence += f". Likely cause: {named[0].title.rstrip('.')}"
    return sentence + "."


@dataclass
class VerdictView:
    """What the verdict section shows, from a submission's typed GradeResult."""

    verdict: str
    label: str
    accepted: bool
    score_percent: int | None
    feedback: str
    checks: list[CheckRow]
    diagnosis: list[Diagnosis]
    training: dict[str, Any] | None
    timings: dict[str, float]
    isolation: str
    failed: bool = False
    stdout: str = ""
    grading_ms: int | None = None
    total_ms: int | None = None

    @property
    def has_chart(self) -> bool:
        return bool(self.training and self.training.get("learner_loss") and self.training.get("reference_loss"))


def verdict_view(submission: Submission) -> VerdictView | None:
    """The verdict of a finished submission, shaped for the template; None while it is being graded."""
    if not submission.is_finished():
        return None
    result = submission.grade_result()
    verdict = submission.verdict or result.verdict.value
    try:
        label = Verdict(verdict).label
    except ValueError:
        label = verdict
    checks = [_check_row(check) for check in result.checks]
    feedback = result.feedback
    if verdict in (Verdict.ACCEPTED.value, Verdict.WRONG_ANSWER.value) and checks:
        feedback = _summary(checks, result.diagnosis)
    return VerdictView(
        verdict=verdict,
        label=label,
        accepted=verdict == Verdict.ACCEPTED.value,
        score_percent=None if submission.score is None else round(submission.score * 100),
        feedback=feedback,
        checks=checks,
        diagnosis=result.diagnosis,
        training=result.training,
        timings=result.timings,
        isolation=submission.isolation or result.isolation_name,
        failed=submission.status == SubmissionStatus.FAILED,
        stdout=result.stdout,
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
