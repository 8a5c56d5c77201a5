"""Writes of the courses app: courses, rosters, assignments, scores, overrides, regrades.

Every change of a learner's points goes through `assignment_score_recompute` or `item_score_override`, which
write the audit log (GradeChange) and send `courses.signals.assignment_score_changed` once the transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from courses import scoring
from courses.models import (
    Assignment,
    AssignmentItem,
    AssignmentScore,
    Counting,
    Course,
    CourseRole,
    CourseStaff,
    Enrollment,
    EnrollmentSource,
    Extension,
    GradeChange,
    GradeChangeCause,
    ItemKind,
    ItemScore,
    LatePolicy,
    RegradeMode,
    RegradeStatus,
    RosterInvitation,
    SubmissionRegrade,
)
from courses.rules import assignment_rules_problem
from courses.signals import assignment_score_changed
from gradlab.errors import Refused
from gradlab.slugs import is_slug

logger = logging.getLogger(__name__)


class CourseError(Refused):
    """Bad input or a refused action on a course: nothing was changed."""


class CourseForbidden(CourseError):
    code = "forbidden"
    http_status = 403


class CourseNotFound(CourseError):
    code = "not_found"
    http_status = 404


class CourseConflict(CourseError):
    code = "conflict"
    http_status = 409


# --- Access ----------------------------------------------------------------------------


def can_create_course(user: Any) -> bool:
    """Staff and members of the instructor group may create courses; learners may not."""
    from gradlab.apps import INSTRUCTOR_GROUP

    if not user.is_authenticated:
        return False
    return bool(user.is_staff or user.is_superuser or user.groups.filter(name=INSTRUCTOR_GROUP).exists())


def staff_role(user: Any, course: Course) -> str | None:
    """The user's CourseRole on the course ('owner' for a superuser), or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return CourseRole.OWNER
    return CourseStaff.objects.filter(course=course, user_id=user.pk).values_list("role", flat=True).first()


def require_staff(user: Any, course: Course, *, manage: bool = False) -> str:
    """The user's role, or CourseForbidden. `manage`: owners and instructors only (not TAs)."""
    role = staff_role(user, course)
    if role is None:
        raise CourseForbidden("Only the course's staff may do this.")
    if manage and role == CourseRole.TEACHING_ASSISTANT:
        raise CourseForbidden("Only the course's owners and instructors may do this.")
    return role


# --- Courses and rosters -----------------------------------------------------------------


def course_create(*, user: Any, slug: str, title: str, term: str = "") -> Course:
    """Create a course with `user` as its owner. Raises CourseForbidden, CourseError or CourseConflict."""
    if not can_create_course(user):
        raise CourseForbidden("Only staff and instructors may create courses.")
    slug = (slug or "").strip()
    title = (title or "").strip()
    if not is_slug(slug) or len(slug) > 60:
        raise CourseError("The slug must be 1-60 lowercase letters, digits and single hyphens, e.g. ml-101.")
    if not title or len(title) > 200:
        raise CourseError("The title must be 1-200 characters.")
    if len(term) > 60:
        raise CourseError("The term must be at most 60 characters.")
    with transaction.atomic():
        if Course.objects.filter(slug=slug).exists():
            raise CourseConflict(f"A course with the slug {slug!r} exists already.")
        course = Course.objects.create(slug=slug, title=title, term=term.strip(), created_by_id=user.pk)
        CourseStaff.objects.create(course=course, user_id=user.pk, role=CourseRole.OWNER)
    return course


def course_staff_add(course: Course, *, by: Any, username: str, role: str) -> CourseStaff:
    require_staff(by, course, manage=True)
    if role not in CourseRole.values:
        raise CourseError(f"Unknown role {role!r}: owner, instructor or teaching_assistant.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CourseNotFound(f"There is no account {username!r}.")
    row, _ = CourseStaff.objects.update_or_create(course=course, user=user, defaults={"role": role})
    return row


def enrollment_add(course: Course, user: Any, source: str) -> Enrollment:
    """Enroll the user (again: nothing changes); refused for an ended course or a member of its staff."""
    if course.is_ended():
        raise CourseConflict(f"The course {course.slug} has ended; it takes no new learners.")
    if CourseStaff.objects.filter(course=course, user_id=user.pk).exists():
        raise CourseError("You are on this course's staff; staff are not enrolled as learners.")
    return enrollment_ensure(course, user.pk, source)[0]


def enrollment_ensure(course: Course, learner_id: int, source: str) -> tuple[Enrollment, bool]:
    """The enrollment, made if new (code, link, roster, LTI) with earlier work counted; True if made."""
    with transaction.atomic():
        enrollment, created = Enrollment.objects.get_or_create(
            course=course, user_id=learner_id, defaults={"source": source}
        )
        if created:
            enrollment_scores_count(course, learner_id)
    return enrollment, created


def enrollment_scores_count(course: Course, learner_id: int) -> None:
    """Count a new learner's earlier work in the assignments they worked on (submission, hint, quiz answer).

    A learner with nothing done keeps empty cells: no score of 0 is announced (an LMS would show it).
    """
    from grader.models import HintReveal, Submission
    from quizzes.models import QuizAttempt

    exercises = set(Submission.objects.filter(user_id=learner_id).values_list("exercise_id", flat=True).distinct())
    exercises |= set(HintReveal.objects.filter(user_id=learner_id).values_list("exercise_id", flat=True).distinct())
    lessons = set(
        QuizAttempt.objects.filter(user_id=learner_id).values_list("question__lesson_id", flat=True).distinct()
    )
    if not exercises and not lessons:
        return
    for assignment in course.assignments.prefetch_related("items"):
        worked = any(item.exercise_id in exercises or item.lesson_id in lessons for item in assignment.items.all())
        if worked:
            assignment_score_recompute(assignment, learner_id, reason="work done before joining the course")


def course_join(*, user: Any, code: str) -> Enrollment:
    """Enroll the user in the course with this join code (again: nothing changes). Raises CourseError."""
    normalized = (code or "").strip().upper().replace("-", "").replace(" ", "")
    course = Course.objects.filter(join_code=normalized).first() if 0 < len(normalized) <= 16 else None
    if course is None:
        raise CourseNotFound("No course has that join code; check it with your instructor.")
    return enrollment_add(course, user, EnrollmentSource.JOIN_CODE)


def course_join_by_invite(*, user: Any, token: str) -> Enrollment:
    """Enroll through a course's invite link or a roster invitation's link."""
    course = Course.objects.filter(invite_token=token).first()
    if course is not None:
        return enrollment_add(course, user, EnrollmentSource.INVITE_LINK)
    invitation = RosterInvitation.objects.select_related("course").filter(token=token).first()
    if invitation is None:
        raise CourseNotFound("This invitation link is not valid; ask your instructor for a new one.")
    if invitation.accepted_by_id not in (None, user.pk):
        raise CourseConflict("This invitation was already used by another account.")
    with transaction.atomic():
        enrollment = enrollment_add(invitation.course, user, EnrollmentSource.ROSTER)
        if invitation.accepted_by_id is None:
            invitation.accepted_by_id = user.pk
            invitation.accepted_at = timezone.now()
            invitation.save(update_fields=["accepted_by", "accepted_at"])
            if not user.email:
                get_user_model().objects.filter(pk=user.pk).update(email=invitation.email)
    return enrollment


# --- Assignments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemSpec:
    kind: str
    slug: str
    points: float
    questions: tuple[str, ...] = ()
    number: int = 0  # what refusals call it ("Item 3"): its row on a form; 0 for its place in the list


MAX_ITEMS = 100
MAX_POINTS = 1000.0


def assignment_create(
    course: Course,
    *,
    by: Any,
    title: str,
    items: list[ItemSpec],
    opens_at: datetime,
    due_at: datetime,
    late_policy: str = LatePolicy.NONE,
    late_penalty_percent: float = 0.0,
    counting: str = Counting.BEST,
    hint_penalty_percent: float = 0.0,
) -> Assignment:
    """Create an assignment with its items. Raises CourseError (nothing stored) for bad input."""
    from grader.models import Exercise
    from lessons.models import Lesson
    from quizzes.models import QuizQuestion

    require_staff(by, course, manage=True)
    if course.is_ended():
        raise CourseConflict(f"The course {course.slug} has ended; it takes no new assignments.")
    title = (title or "").strip()
    problem = assignment_rules_problem(
        title=title,
        opens_at=opens_at,
        due_at=due_at,
        late_policy=late_policy,
        late_penalty_percent=late_penalty_percent,
        counting=counting,
        hint_penalty_percent=hint_penalty_percent,
    )
    if problem:
        raise CourseError(problem)
    if not items:
        raise CourseError("An assignment needs at least one item.")
    if len(items) > MAX_ITEMS:
        raise CourseError(f"An assignment has at most {MAX_ITEMS} items.")
    resolved: list[tuple[ItemSpec, Any, list[Any]]] = []
    seen: set[tuple[str, str]] = set()
    for position, spec in enumerate(items, start=1):
        number = spec.number or position
        if not (0 < spec.points <= MAX_POINTS) or spec.points != spec.points:
            raise CourseError(f"Item {number}: points must be more than 0 and at most {MAX_POINTS:g}.")
        if (spec.kind, spec.slug) in seen:
            raise CourseError(f"Item {number}: {spec.kind} {spec.slug!r} is listed twice.")
        seen.add((spec.kind, spec.slug))
        if spec.kind == ItemKind.EXERCISE:
            exercise = Exercise.objects.filter(slug=spec.slug, is_active=True).first()
            if exercise is None:
                raise CourseError(f"Item {number}: there is no exercise {spec.slug!r}.")
            resolved.append((spec, exercise, []))
        elif spec.kind == ItemKind.QUIZ:
            lesson = Lesson.objects.filter(slug=spec.slug).first()
            if lesson is None:
                raise CourseError(f"Item {number}: there is no lesson {spec.slug!r}.")
            active = {q.key: q for q in QuizQuestion.objects.filter(lesson=lesson, is_active=True)}
            if not active:
                raise CourseError(f"Item {number}: the lesson {spec.slug!r} has no quiz questions.")
            missing = [key for key in spec.questions if key not in active]
            if missing:
                raise CourseError(f"Item {number}: the quiz of {spec.slug!r} has no question {missing[0]!r}.")
            resolved.append((spec, lesson, [active[key] for key in spec.questions]))
        else:
            raise CourseError(f"Item {number}: kind must be exercise or quiz, not {spec.kind!r}.")
    with transaction.atomic():
        assignment = Assignment.objects.create(
            course=course,
            title=title,
            opens_at=opens_at,
            due_at=due_at,
            late_policy=late_policy,
            late_penalty_percent=late_penalty_percent if late_policy == LatePolicy.PENALTY_PER_DAY else 0.0,
            counting=counting,
            hint_penalty_percent=hint_penalty_percent,
        )
        for order, (spec, target, questions) in enumerate(resolved):
            item = AssignmentItem.objects.create(
                assignment=assignment,
                order=order,
                kind=spec.kind,
                exercise=target if spec.kind == ItemKind.EXERCISE else None,
                lesson=target if spec.kind == ItemKind.QUIZ else None,
                points=spec.points,
            )
            if questions:
                item.questions.set(questions)
        # Work done before the assignment existed counts too (it was made inside its window).
        for learner_id in Enrollment.objects.filter(course=course).values_list("user_id", flat=True):
            assignment_score_recompute(assignment, learner_id)
    return assignment


def extension_grant(assignment: Assignment, learner_id: int, *, due_at: datetime, reason: str, by: Any) -> Extension:
    """Give one learner a later due time (replacing an earlier extension) and recount their score."""
    require_staff(by, assignment.course)
    if not Enrollment.objects.filter(course_id=assignment.course_id, user_id=learner_id).exists():
        raise CourseError("That learner is not enrolled in this course.")
    if due_at <= assignment.due_at:
        raise CourseError("An extension's due time must be after the assignment's.")
    with transaction.atomic():
        extension, _ = Extension.objects.update_or_create(
            assignment=assignment,
            learner_id=learner_id,
            defaults={"due_at": due_at, "reason": reason.strip()[:300], "granted_by_id": by.pk},
        )
        assignment_score_recompute(
            assignment, learner_id, cause=GradeChangeCause.EXTENSION, changed_by_id=by.pk, reason=reason
        )
    return extension


# --- Scores ----------------------------------------------------------------------------


def effective_submission_scores(submission_ids: Iterable[int]) -> dict[int, tuple[float, str]]:
    """(score, verdict) of each submission after its newest applied regrade (for those regraded)."""
    ids = list(submission_ids)
    if not ids:
        return {}
    rows = (
        SubmissionRegrade.objects.filter(submission_id__in=ids, status=RegradeStatus.DONE, job__mode=RegradeMode.APPLY)
        .order_by("submission_id", "finished_at", "id")
        .values_list("submission_id", "new_score", "new_verdict")
    )
    return {submission_id: (float(score or 0.0), verdict) for submission_id, score, verdict in rows}


def learner_due_at(assignment: Assignment, learner_id: int) -> datetime:
    extension = Extension.objects.filter(assignment=assignment, learner_id=learner_id).values_list("due_at").first()
    return max(extension[0], assignment.due_at) if extension else assignment.due_at  # never earlier


def _exercise_work(
    item: AssignmentItem, learner_id: int, substitute: dict[int, float] | None = None
) -> list[scoring.Work]:
    """The learner's graded submissions of the item's exercise, each with its score after any applied
    regrade (or, for the submissions in `substitute`, that score instead: a regrade preview)."""
    from grader.models import Submission, SubmissionStatus

    rows = list(
        Submission.objects.filter(
            user_id=learner_id, exercise__assignment_items=item, status=SubmissionStatus.GRADED
        ).values_list("pk", "created_at", "score")
    )
    regraded = effective_submission_scores(pk for pk, _, _ in rows)
    work = []
    for pk, created_at, score in rows:
        effective = regraded.get(pk)
        value = effective[0] if effective else float(score or 0.0)
        if substitute and pk in substitute:
            value = substitute[pk]
        work.append(scoring.Work(at=created_at, score=value, submission_id=pk))
    return work


def item_question_ids(item: AssignmentItem) -> list[int]:
    """The quiz questions an item counts: the chosen ones, or all active questions of its lesson."""
    from quizzes.models import QuizQuestion

    chosen = [question.pk for question in item.questions.all()]
    if chosen:
        return chosen
    return list(
        QuizQuestion.objects.filter(lesson__assignment_items=item, is_active=True)
        .order_by("order", "pk")
        .values_list("pk", flat=True)
    )


def _quiz_work(question_ids: list[int], learner_id: int) -> list[scoring.Work]:
    from quizzes.models import QuizAttempt

    rows = QuizAttempt.objects.filter(user_id=learner_id, question_id__in=question_ids).values_list(
        "question_id", "created_at", "score"
    )
    return [scoring.Work(at=at, score=float(score), question_id=question_id) for question_id, at, score in rows]


def item_count(
    item: AssignmentItem, learner_id: int, due_at: datetime, substitute: dict[int, float] | None = None
) -> scoring.Counted:
    """What counts for one learner on one item right now (reads the database, writes nothing);
    `substitute` maps submission ids to scores to count instead of theirs (a regrade preview)."""
    assignment = item.assignment
    ended_at = assignment.course.ended_at
    if item.kind == ItemKind.EXERCISE:
        from grader.models import HintReveal

        work = _exercise_work(item, learner_id, substitute)
        hints = HintReveal.objects.filter(user_id=learner_id, exercise_id=item.exercise_id or 0)
        return scoring.count_exercise(
            assignment,
            item.points,
            work=work,
            due_at=due_at,
            ended_at=ended_at,
            hint_times=list(hints.values_list("revealed_at", flat=True)),
        )
    question_ids = item_question_ids(item)
    return scoring.count_quiz(
        assignment,
        item.points,
        question_ids=question_ids,
        work=_quiz_work(question_ids, learner_id),
        due_at=due_at,
        ended_at=ended_at,
    )


def assignment_score_recompute(
    assignment: Assignment,
    learner_id: int,
    *,
    cause: GradeChangeCause = GradeChangeCause.RECOMPUTE,
    changed_by_id: int | None = None,
    reason: str = "",
) -> AssignmentScore:
    """Recount every item of `assignment` for the learner; store the points and the total.

    Each item whose points change gets a GradeChange row (cause, who, old, new, why);
    an overridden item keeps its override (its computed points are still updated).
    When the total changes, `assignment_score_changed` is sent after commit.
    Returns the stored total.
    """
    with transaction.atomic():
        items = list(assignment.items.select_related("exercise", "lesson").prefetch_related("questions"))
        due_at = learner_due_at(assignment, learner_id)
        existing = {score.item_id: score for score in ItemScore.objects.filter(item__in=items, learner_id=learner_id)}
        total = 0.0
        any_late = False
        changes = []
        for item in items:
            counted = item_count(item, learner_id, due_at)
            row = existing.get(item.pk)
            if row is None:
                row = ItemScore(item=item, learner_id=learner_id)
            old_points = row.points if row.pk else None
            row.computed_points = counted.points
            row.points = row.override_points if row.override_points is not None else counted.points
            row.counted_at = counted.counted_at
            row.submission_id = counted.submission_id
            row.attempts = counted.attempts
            row.is_late = counted.is_late
            row.late_days = counted.late_days
            row.hints_charged, row.hint_penalty = counted.hints_charged, counted.hint_penalty
            row.hints_seen = counted.hints_seen
            if row.pk is None and row.points is None and counted.attempts == 0 and counted.hints_seen == 0:
                continue  # no work, no row: the gradebook shows an empty cell either way
            row.save()
            if old_points != row.points:
                why = reason
                if counted.hint_penalty:
                    charge = f"{counted.hints_charged} hint(s) charged: -{counted.hint_penalty:g} points"
                    why = f"{reason}; {charge}" if reason else charge
                changes.append(
                    GradeChange(
                        item=item,
                        learner_id=learner_id,
                        changed_by_id=changed_by_id,
                        cause=cause,
                        old_points=old_points,
                        new_points=row.points,
                        reason=why[:500],
                    )
                )
            total += row.points or 0.0
            any_late = any_late or (row.is_late and row.override_points is None)
        GradeChange.objects.bulk_create(changes)
        return _store_total(assignment, learner_id, round(total, 4), sum(item.points for item in items), any_late)


def _store_total(
    assignment: Assignment, learner_id: int, total: float, max_score: float, late: bool
) -> AssignmentScore:
    row, created = AssignmentScore.objects.get_or_create(
        assignment=assignment, learner_id=learner_id, defaults={"score": total, "max_score": max_score, "is_late": late}
    )
    changed = created or row.score != total or row.max_score != max_score
    if not created and (changed or row.is_late != late):
        row.score, row.max_score, row.is_late = total, max_score, late
        row.save(update_fields=["score", "max_score", "is_late", "updated_at"])
    if changed:
        _announce(assignment, learner_id, total, max_score)
    return row


def _announce(assignment: Assignment, learner_id: int, score: float, max_score: float) -> None:
    def send() -> None:
        from django.contrib.auth import get_user_model

        learner = get_user_model().objects.filter(pk=learner_id).first()
        if learner is None:
            return
        for receiver, response in assignment_score_changed.send_robust(
            sender=Assignment, assignment=assignment, learner=learner, score=score, max_score=max_score
        ):
            if isinstance(response, Exception):
                logger.error("assignment_score_changed receiver %r failed: %r", receiver, response)

    transaction.on_commit(send)


def assignments_touching(
    *, learner_id: int, exercise_id: int | None = None, question_id: int | None = None
) -> list[Assignment]:
    """The assignments of the learner's courses with an item on this exercise or quiz question."""
    enrolled = Enrollment.objects.filter(user_id=learner_id).values("course_id")
    items = AssignmentItem.objects.filter(assignment__course_id__in=enrolled)
    if exercise_id is not None:
        items = items.filter(kind=ItemKind.EXERCISE, exercise_id=exercise_id)
    elif question_id is not None:
        from quizzes.models import QuizQuestion

        lesson_id = QuizQuestion.objects.filter(pk=question_id).values_list("lesson_id", flat=True).first()
        if lesson_id is None:
            return []
        items = items.filter(kind=ItemKind.QUIZ, lesson_id=lesson_id)
    else:
        return []
    ids = set(items.values_list("assignment_id", flat=True))
    return list(Assignment.objects.filter(pk__in=ids).select_related("course"))


def assignment_scores_recount(assignment: Assignment, *, by_id: int | None, reason: str) -> int:
    """Recount every enrolled learner's score on the assignment after its rules changed; return how many."""
    learners = list(Enrollment.objects.filter(course_id=assignment.course_id).values_list("user_id", flat=True))
    for learner_id in learners:
        assignment_score_recompute(assignment, learner_id, changed_by_id=by_id, reason=reason)
    return len(learners)


def scores_after_work(*, learner_id: int, cause: GradeChangeCause, **target: Any) -> int:
    """Recompute the learner's assignments that contain this exercise or question; return how many."""
    assignments = assignments_touching(learner_id=learner_id, **target)
    for assignment in assignments:
        assignment_score_recompute(assignment, learner_id, cause=cause)
    return len(assignments)


def item_score_override(
    item: AssignmentItem, learner_id: int, *, points: float | None, reason: str, by_id: int
) -> ItemScore:
    """Set (or with `points` None, clear) a staff override of a learner's points on an item.

    Raises CourseError (nothing changed) without a reason, for points outside
    0..item.points, or for someone not enrolled in the course.
    """
    reason = (reason or "").strip()
    if not reason:
        raise CourseError("Give a reason for the override; it goes to the audit log.")
    if len(reason) > 500:
        raise CourseError("The reason is longer than 500 characters.")
    if points is not None and not (0 <= points <= item.points):
        raise CourseError(f"Points must be between 0 and {item.points:g}.")
    assignment = item.assignment
    if not Enrollment.objects.filter(course_id=assignment.course_id, user_id=learner_id).exists():
        raise CourseError("That learner is not enrolled in this course.")
    with transaction.atomic():
        row, _ = ItemScore.objects.select_for_update().get_or_create(item=item, learner_id=learner_id)
        old = row.points
        row.override_points = points
        row.override_reason = reason if points is not None else ""
        row.points = points if points is not None else row.computed_points
        row.save()
        GradeChange.objects.create(
            item=item,
            learner_id=learner_id,
            changed_by_id=by_id,
            cause=GradeChangeCause.OVERRIDE if points is not None else GradeChangeCause.OVERRIDE_CLEARED,
            old_points=old,
            new_points=row.points,
            reason=reason,
        )
        totals = ItemScore.objects.filter(item__assignment=assignment, learner_id=learner_id).values_list(
            "points", flat=True
        )
        late = ItemScore.objects.filter(
            item__assignment=assignment, learner_id=learner_id, is_late=True, override_points__isnull=True
        ).exists()
        _store_total(assignment, learner_id, round(sum(p or 0.0 for p in totals), 4), assignment.max_points(), late)
    return row
