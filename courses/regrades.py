"""Regrades of an assignment's past submissions: a dry run that previews, or an application that counts.

Each submission is graded again by a worker (courses.tasks.regrade_submission); the original
result is never rewritten, the new one is stored beside it (RegradeResult). Entry points:
`regrade_start` (views and API), `submission_regrade_run` (the task), `regrade_sweep` (beat),
`regrade_job_progress` (what a job's page and the API show).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from courses.models import (
    Assignment,
    AssignmentItem,
    Enrollment,
    GradeChangeCause,
    ItemKind,
    ItemScore,
    RegradeJob,
    RegradeMode,
    RegradeStatus,
    SubmissionRegrade,
)
from courses.services import (
    CourseConflict,
    assignment_score_recompute,
    effective_submission_scores,
    item_count,
    learner_due_at,
    require_staff,
)
from gradlab.tasks_send import task_send

logger = logging.getLogger(__name__)


REGRADE_TASK_NAME = "courses.tasks.regrade_submission"


def regrade_start(assignment: Assignment, *, by: Any, dry_run: bool) -> RegradeJob:
    """Queue a regrade of the assignment's past exercise submissions with the exercises as they are now.

    Every graded submission of an enrolled learner made since the assignment opened is
    graded again in a worker (one task each). A dry run (`dry_run`) stores the new
    results beside the old ones without counting them, and its summary says what would
    change; otherwise, once all are done, the new results count and the scores are
    recounted (audit log cause "regrade"). Raises CourseForbidden for TAs and outsiders,
    CourseConflict while another regrade of the assignment is unfinished.
    """
    from grader.models import Submission, SubmissionStatus

    require_staff(by, assignment.course, manage=True)
    with transaction.atomic():
        if RegradeJob.objects.filter(
            assignment=assignment, status__in=[RegradeStatus.QUEUED, RegradeStatus.RUNNING]
        ).exists():
            raise CourseConflict("A regrade of this assignment is still running; wait for it to finish.")
        learners = Enrollment.objects.filter(course_id=assignment.course_id).values("user_id")
        exercises = assignment.items.filter(kind=ItemKind.EXERCISE).values("exercise_id")
        submissions = list(
            Submission.objects.filter(
                user_id__in=learners,
                exercise_id__in=exercises,
                status=SubmissionStatus.GRADED,
                created_at__gte=assignment.opens_at,
            ).values_list("pk", "verdict", "score")
        )
        current = effective_submission_scores(pk for pk, _, _ in submissions)
        job = RegradeJob.objects.create(
            assignment=assignment,
            mode=RegradeMode.PREVIEW if dry_run else RegradeMode.APPLY,
            requested_by_id=by.pk,
            total=len(submissions),
            status=RegradeStatus.QUEUED if submissions else RegradeStatus.DONE,
            finished_at=None if submissions else timezone.now(),
        )
        SubmissionRegrade.objects.bulk_create(
            [
                SubmissionRegrade(
                    job=job,
                    submission_id=pk,
                    old_verdict=current[pk][1] if pk in current else verdict,
                    old_score=current[pk][0] if pk in current else score,
                )
                for pk, verdict, score in submissions
            ]
        )
        if not submissions:
            job.summary = _regrade_summary(job)
            job.save(update_fields=["summary"])
        else:
            ids = list(job.results.values_list("pk", flat=True))
            transaction.on_commit(lambda: regrade_enqueue(ids))
    return job


def regrade_enqueue(regrade_ids: list[int]) -> int:
    """Send one task per queued SubmissionRegrade; return how many were sent."""
    return sum(task_send(REGRADE_TASK_NAME, regrade_id) for regrade_id in regrade_ids)


def _grade_again(submission: Any) -> dict[str, Any]:
    """The grader's result for the submission's code with its exercise as it is now."""
    from grader.engine import Engine
    from grader.spec import ExerciseSpec

    spec = ExerciseSpec.from_model(submission.exercise)
    result: dict[str, Any] = Engine.get().grade(spec, submission.code).to_json()
    return result


def submission_regrade_run(regrade_id: int, *, grade: Any = None) -> bool:
    """Grade one queued SubmissionRegrade (guarded claim: a redelivered message does nothing).

    Returns True if this call graded it. The last one of a job finishes the job.
    """
    claimed = SubmissionRegrade.objects.filter(pk=regrade_id, status=RegradeStatus.QUEUED).update(
        status=RegradeStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return False
    regrade = SubmissionRegrade.objects.select_related("submission__exercise", "job").get(pk=regrade_id)
    RegradeJob.objects.filter(pk=regrade.job_id, status=RegradeStatus.QUEUED).update(status=RegradeStatus.RUNNING)
    try:
        result = (grade or _grade_again)(regrade.submission)
        status = RegradeStatus.DONE
    except Exception as error:
        logger.exception("regrade %s failed", regrade_id)
        result = {"verdict": "internal_error", "score": None, "internal_reason": f"{type(error).__name__}: {error}"}
        status = RegradeStatus.FAILED
    if result.get("verdict") == "internal_error":
        status = RegradeStatus.FAILED
    SubmissionRegrade.objects.filter(pk=regrade_id, status=RegradeStatus.RUNNING).update(
        status=status,
        new_verdict=str(result.get("verdict") or ""),
        new_score=float(result["score"]) if result.get("score") is not None else None,
        result=result,
        finished_at=timezone.now(),
    )
    RegradeJob.objects.filter(pk=regrade.job_id).update(done=F("done") + 1)
    _finish_job_if_done(regrade.job_id)
    return True


def regrade_sweep(*, now: datetime | None = None, enqueue: Any = None) -> dict[str, list[int]]:
    """Recover regrades whose message or worker was lost; return the ids reset and re-sent.

    - RUNNING for longer than the task's hard time limit plus GRADER_RUNNING_GRACE_S (its
      worker died): back to QUEUED (a conditional update) and sent again;
    - QUEUED in a job that made no progress for GRADER_REQUEUE_AFTER_S (the messages were
      lost, e.g. Redis restarted): sent again. A duplicate message is harmless (the claim).
    """
    from django.conf import settings

    now = now or timezone.now()
    enqueue = enqueue or regrade_enqueue
    stale_before = now - timedelta(seconds=settings.GRADING_HARD_TIME_LIMIT_S + settings.GRADER_RUNNING_GRACE_S)
    stuck = list(
        SubmissionRegrade.objects.filter(status=RegradeStatus.RUNNING, started_at__lt=stale_before).values_list(
            "pk", flat=True
        )[:1000]
    )
    reset = [
        pk
        for pk in stuck
        if SubmissionRegrade.objects.filter(pk=pk, status=RegradeStatus.RUNNING, started_at__lt=stale_before).update(
            status=RegradeStatus.QUEUED, started_at=None
        )
    ]
    quiet_since = now - timedelta(seconds=settings.GRADER_REQUEUE_AFTER_S)
    resent: list[int] = []
    for job in RegradeJob.objects.filter(
        status__in=[RegradeStatus.QUEUED, RegradeStatus.RUNNING], created_at__lt=quiet_since
    ):
        last = job.results.aggregate(last=Max("finished_at"), started=Max("started_at"))
        activity = max([moment for moment in (last["last"], last["started"]) if moment is not None], default=None)
        if activity is not None and activity >= quiet_since:
            continue
        resent += list(job.results.filter(status=RegradeStatus.QUEUED).values_list("pk", flat=True)[:1000])
    to_send = sorted(set(reset) | set(resent))
    if to_send:
        enqueue(to_send)
        logger.info("regrade sweep: reset %s, re-sent %s", reset, to_send)
    return {"reset": reset, "resent": to_send}


def _finish_job_if_done(job_id: int) -> None:
    unfinished = SubmissionRegrade.objects.filter(
        job_id=job_id, status__in=[RegradeStatus.QUEUED, RegradeStatus.RUNNING]
    ).exists()
    if unfinished:
        return
    # One caller wins the finish (a conditional update), so scores are recounted once.
    if not RegradeJob.objects.filter(pk=job_id, status=RegradeStatus.RUNNING).update(status=RegradeStatus.DONE):
        return
    job = RegradeJob.objects.select_related("assignment__course").get(pk=job_id)
    with transaction.atomic():
        job.summary = _regrade_summary(job)
        job.finished_at = timezone.now()
        job.save(update_fields=["summary", "finished_at"])
        if job.mode == RegradeMode.APPLY:
            learners = set(job.results.values_list("submission__user_id", flat=True))
            for learner_id in sorted(learners):
                assignment_score_recompute(
                    job.assignment,
                    learner_id,
                    cause=GradeChangeCause.REGRADE,
                    changed_by_id=job.requested_by_id,
                    reason=f"Regrade #{job.pk}",
                )


def _regrade_summary(job: RegradeJob) -> dict[str, Any]:
    """What the job changes: verdicts and scores of submissions, and points per (learner, item)."""

    results = list(
        job.results.filter(status=RegradeStatus.DONE).values_list(
            "submission_id",
            "submission__user_id",
            "submission__exercise_id",
            "old_verdict",
            "new_verdict",
            "old_score",
            "new_score",
        )
    )
    failed = job.results.filter(status=RegradeStatus.FAILED).count()
    verdicts_changed = sum(1 for row in results if row[3] != row[4])
    scores_changed = sum(1 for row in results if (row[5] or 0.0) != (row[6] or 0.0))
    by_learner: dict[int, dict[int, float]] = {}
    for submission_id, user_id, _, _, _, _, new_score in results:
        by_learner.setdefault(user_id, {})[submission_id] = float(new_score or 0.0)
    assignment = job.assignment
    items = list(assignment.items.filter(kind=ItemKind.EXERCISE).select_related("exercise", "assignment__course"))
    names = dict(get_user_model().objects.filter(pk__in=by_learner).values_list("pk", "username"))
    changes = []
    for learner_id, substitute in sorted(by_learner.items(), key=lambda pair: names.get(pair[0], "")):
        due_at = learner_due_at(assignment, learner_id)
        current = dict(
            ItemScore.objects.filter(item__in=items, learner_id=learner_id).values_list("item_id", "computed_points")
        )
        for item in items:
            new = item_count(item, learner_id, due_at, substitute if job.mode == RegradeMode.PREVIEW else None).points
            old = current.get(item.pk)
            if job.mode == RegradeMode.APPLY:
                old = _points_without_regrade(item, learner_id, due_at, job)
            if (old or 0.0) != (new or 0.0):
                changes.append(
                    {
                        "learner": names.get(learner_id, str(learner_id)),
                        "learner_id": learner_id,
                        "item": item.label(),
                        "item_id": item.pk,
                        "old": old,
                        "new": new,
                    }
                )
    return {
        "submissions": len(results) + failed,
        "failed": failed,
        "verdicts_changed": verdicts_changed,
        "scores_changed": scores_changed,
        "points_changed": len(changes),
        "learners_changed": len({change["learner_id"] for change in changes}),
        "changes": changes,
    }


def _points_without_regrade(item: AssignmentItem, learner_id: int, due_at: datetime, job: RegradeJob) -> float | None:
    """The item's points from the scores these submissions had before `job` (for an apply job's summary)."""
    old = dict(job.results.filter(submission__user_id=learner_id).values_list("submission_id", "old_score"))
    return item_count(item, learner_id, due_at, {pk: float(score or 0.0) for pk, score in old.items()}).points


def regrade_job_progress(job: RegradeJob) -> dict[str, Any]:
    return {"id": job.pk, "mode": job.mode, "status": job.status, "done": job.done, "total": job.total}
