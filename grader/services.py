"""Writes of submissions: create and enqueue, claim, record progress, finish, sweep.

The Submission row is the source of truth; the Redis message only wakes a worker up
(docs/architecture.md). Every write by a worker is a conditional UPDATE on the
row's status and on the claim it holds (`claim_count`), so:

- a redelivered or duplicated message finds the row no longer QUEUED and does nothing;
- a worker that was written off by the sweeper (and whose row another worker now
  grades) can no longer change the row: its claim is stale;
- hence a verdict is written once per submission (`graded_count` stays 1).

Nothing here imports the grader engine at module level: the web process enqueues
without loading PyTorch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from grader.models import Exercise, Submission, SubmissionDiagnosis, SubmissionStatus
from grader.result import GradeResult
from grader.verdicts import Stage, Verdict
from gradlab.errors import Refused
from gradlab.slugs import is_slug
from gradlab.tasks_send import task_send

if TYPE_CHECKING:
    from grader.engine import Engine

logger = logging.getLogger(__name__)

GRADE_TASK_NAME = "grader.tasks.grade_submission"
RATE_WINDOW_S = 60
# A row whose first publish has not happened this long after creation is re-sent by the sweeper.
UNSENT_GRACE_S = 5
SWEEP_BATCH = 1000
# Publishing must fail fast when Redis is down: the row is kept and the sweeper sends it later.

INTERNAL_ERROR_FEEDBACK = (
    "The grader itself failed on this submission (this is not a problem with your code). "
    "Please submit again; if it keeps happening, tell the course staff."
)


# --- Errors the learner sees -------------------------------------------------------------


class SubmissionRejected(Refused):
    """Bad input: nothing was stored."""

    code = "invalid_submission"


class NotAuthenticated(SubmissionRejected):
    code = "not_authenticated"
    http_status = 401


class UnknownExercise(SubmissionRejected):
    code = "unknown_exercise"
    http_status = 404


class CodeTooLarge(SubmissionRejected):
    code = "code_too_large"
    http_status = 413


class CodeNotUtf8(SubmissionRejected):
    code = "code_not_utf8"


class CodeEmpty(SubmissionRejected):
    code = "code_empty"


class RateLimited(SubmissionRejected):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# --- Creating and enqueueing -------------------------------------------------------------


def _validated_source(code: str | bytes) -> str:
    """Return the code as text, or raise CodeNotUtf8 / CodeTooLarge / CodeEmpty."""
    if isinstance(code, bytes):
        try:
            text = code.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CodeNotUtf8(
                f"Your code is not valid UTF-8 (byte {error.start + 1} cannot be decoded). Save the file as UTF-8."
            ) from None
        size = len(code)
    else:
        try:
            size = len(code.encode("utf-8"))
        except UnicodeEncodeError:
            raise CodeNotUtf8("Your code contains characters that are not valid UTF-8 (lone surrogates).") from None
        text = code
    limit = settings.GRADER_MAX_SOURCE_BYTES
    if size > limit:
        raise CodeTooLarge(f"Your code is {size / 1024:.1f} KiB; the limit is {limit / 1024:.0f} KiB.")
    if "\x00" in text:
        raise CodeNotUtf8("Your code contains a NUL character; submit Python source text.")
    if not text.strip():
        raise CodeEmpty("Your code is empty.")
    return text


def _check_rate(user_id: int, now: datetime) -> None:
    """Raise RateLimited when the user already made the allowed number of submissions in the last minute."""
    limit = settings.GRADER_SUBMISSIONS_PER_MINUTE
    window_start = now - timedelta(seconds=RATE_WINDOW_S)
    recent = list(
        Submission.objects.filter(user_id=user_id, created_at__gt=window_start)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return
    # The oldest of the last `limit` submissions leaves the window first.
    frees_at = recent[-1] + timedelta(seconds=RATE_WINDOW_S)
    retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
    raise RateLimited(
        f"You can submit {limit} times per minute. Try again in {retry_after} s.",
        retry_after_s=retry_after,
    )


def submission_create(*, user: AbstractBaseUser | AnonymousUser, exercise_slug: str, code: str | bytes) -> Submission:
    """Validate, store a QUEUED submission and send its wake-up message once the transaction commits.

    Raises a SubmissionRejected subclass (and stores nothing) for an anonymous user, an
    unknown or retired exercise, code that is not UTF-8, too large or empty, or a user
    over the per-minute limit. If Redis is down the row is still stored, with
    `enqueued_at` None; the sweeper sends the message once Redis is back.
    """
    if not user.is_authenticated:
        raise NotAuthenticated("Log in to submit code.")
    source = _validated_source(code)
    exercise = None
    if is_slug(exercise_slug):
        exercise = Exercise.objects.filter(slug=exercise_slug, is_active=True).first()
    if exercise is None:
        raise UnknownExercise(f"There is no exercise {exercise_slug!r}.")
    with transaction.atomic():
        # Count and insert under one lock per user (the user's row, FOR UPDATE; SQLite's IMMEDIATE
        # transactions already serialize writers), so concurrent requests cannot all pass the count.
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        _check_rate(user.pk, timezone.now())
        previous = Submission.objects.filter(user_id=user.pk, exercise=exercise).aggregate(last=Max("attempt"))["last"]
        submission = Submission.objects.create(
            user_id=user.pk,
            exercise=exercise,
            code=source,
            attempt=(previous or 0) + 1,
            status=SubmissionStatus.QUEUED,
            stage=Stage.QUEUED.value,
        )
        transaction.on_commit(lambda: submission_enqueue(submission))
    return submission


def submission_enqueue(submission: Submission) -> bool:
    """Send the wake-up message for a QUEUED submission; return False if the broker could not be reached.

    On success `enqueued_at` is set (on the row and on `submission`) to the time just
    before publishing; on failure the row is left as it was, for the sweeper.
    """
    sent_at = timezone.now()
    if not task_send(GRADE_TASK_NAME, submission.pk):
        return False
    Submission.objects.filter(pk=submission.pk, status=SubmissionStatus.QUEUED).update(enqueued_at=sent_at)
    submission.enqueued_at = sent_at
    return True


# --- Grading (runs in a worker) ---------------------------------------------------------


def worker_identity() -> str:
    """`host:pid` of this process; stored on the rows it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _local_process_is_gone(identity: str) -> bool:
    """True if `identity` names a process of this machine that no longer runs (or this very process).

    A prefork pool child grades one task at a time, so a row claimed under our own pid
    is not being graded by anyone else.
    """
    host, _, pid_text = identity.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def submission_claim(submission_id: int, *, worker: str | None = None) -> Submission | None:
    """Claim a QUEUED submission for grading; return it, or None if someone else has it or it is done.

    The claim is one conditional UPDATE (status QUEUED -> RUNNING), so of any number of
    messages for the same row exactly one proceeds. A row still RUNNING under a process
    of this machine that died (the pool child was killed; Celery redelivers the
    message) is taken over the same way, conditioned on the claim it had.
    """
    worker = worker or worker_identity()
    now = timezone.now()
    running = {
        "status": SubmissionStatus.RUNNING,
        "stage": Stage.SANDBOX.value,
        "started_at": now,
        "claim_count": F("claim_count") + 1,
        "worker": worker,
    }
    claimed = Submission.objects.filter(pk=submission_id, status=SubmissionStatus.QUEUED).update(**running)
    if not claimed:
        row = (
            Submission.objects.filter(pk=submission_id, status=SubmissionStatus.RUNNING)
            .values("worker", "claim_count")
            .first()
        )
        if row is None or not _local_process_is_gone(row["worker"]):
            return None
        if row["claim_count"] >= settings.GRADER_MAX_CLAIMS:
            submission_fail(submission_id, claim=row["claim_count"], reason="grading crashed the worker repeatedly")
            return None
        claimed = (
            Submission.objects.held(submission_id, row["claim_count"]).filter(worker=row["worker"]).update(**running)
        )
        if not claimed:
            return None
        logger.warning("submission %s taken over from dead worker process %s", submission_id, row["worker"])
    return Submission.objects.select_related("exercise").get(pk=submission_id)


# Entering a stage closes the phase before it.
_PHASE_ENDS = {
    Stage.CHECKS: "sandbox_ready_at",
    Stage.TRAINING: "checks_finished_at",
    Stage.DONE: "training_finished_at",
}


def submission_record_stage(submission_id: int, *, claim: int, stage: Stage, previous: Stage | None = None) -> bool:
    """Store the stage a grading has reached and the end of the phase before it; False if the claim is stale."""
    changes: dict[str, Any] = {"stage": stage.value}
    now = timezone.now()
    phase_end = _PHASE_ENDS.get(stage)
    if stage == Stage.DONE and previous != Stage.TRAINING:
        # No training run (the checks failed): the checks phase is what just ended.
        phase_end = "checks_finished_at" if previous == Stage.CHECKS else None
    if phase_end:
        changes[phase_end] = now
    return bool(Submission.objects.held(submission_id, claim).update(**changes))


def submission_finish(submission_id: int, *, claim: int, result: GradeResult | Mapping[str, Any]) -> bool:
    """Write the verdict of a grading (status GRADED); return False if the claim is stale and nothing was written.

    The result is stored once, as its JSON; the verdict, score, isolation and phase-time columns
    are derived from it. A result JSON (rather than a GradeResult) is read as
    GradeResult.from_json reads it.
    """
    grade = GradeResult.coerce(result)
    with transaction.atomic():
        written = Submission.objects.held(submission_id, claim).update(
            status=SubmissionStatus.GRADED,
            stage=Stage.DONE.value,
            verdict=grade.verdict.value,
            score=grade.score,
            result=grade.to_json(),
            isolation=grade.isolation_name,
            phase_times=grade.timings,
            finished_at=timezone.now(),
            graded_count=F("graded_count") + 1,
        )
        if written:
            # The dashboard counts diagnoses from this narrow copy (grader.models.SubmissionDiagnosis).
            SubmissionDiagnosis.store_for(submission_id, grade.verdict.value, grade)
            transaction.on_commit(lambda: _announce_graded(submission_id))
    return bool(written)


def _announce_graded(submission_id: int) -> None:
    """Send grader.signals.submission_graded (courses recounts scores); a failing receiver is only logged."""
    from grader.signals import submission_graded

    row = Submission.objects.filter(pk=submission_id).values("user_id", "exercise_id").first()
    if row is None:
        return
    for receiver, response in submission_graded.send_robust(sender=Submission, submission_id=submission_id, **row):
        if isinstance(response, Exception):
            logger.error("submission_graded receiver %r failed on %s: %r", receiver, submission_id, response)


def submission_fail(
    submission_id: int, *, claim: int, reason: str, result: GradeResult | Mapping[str, Any] | None = None
) -> bool:
    """Give up on a submission the grader could not grade (status FAILED, verdict internal_error).

    `reason` goes to the log and to the result for staff (`internal_reason`); the learner reads
    a fixed message. What `result` holds besides (checks, timings...) is kept. Returns False if
    the claim is stale.
    """
    logger.error("submission %s failed: %s", submission_id, reason)
    base = GradeResult.coerce(result) if result is not None else GradeResult(Verdict.INTERNAL_ERROR, 0.0, None)
    stored = dataclasses.replace(
        base, verdict=Verdict.INTERNAL_ERROR, score=0.0, feedback=INTERNAL_ERROR_FEEDBACK, internal_reason=reason
    )
    return bool(
        Submission.objects.held(submission_id, claim).update(
            status=SubmissionStatus.FAILED,
            stage=Stage.DONE.value,
            verdict=Verdict.INTERNAL_ERROR.value,
            score=0.0,
            result=stored.to_json(),
            finished_at=timezone.now(),
            graded_count=F("graded_count") + 1,
        )
    )


def submission_release(submission_id: int, *, claim: int) -> bool:
    """Put a claimed submission back to QUEUED (a transient failure; the caller re-sends it)."""
    return bool(
        Submission.objects.held(submission_id, claim).update(
            status=SubmissionStatus.QUEUED, stage=Stage.QUEUED.value, worker="", enqueued_at=None
        )
    )


class GradingInterrupted(Exception):
    """The grading could not finish for a reason that is not the submission's fault; it may be retried.

    `released` tells whether the row went back to QUEUED (retry it) or was marked FAILED
    (the claim cap was reached; do not retry).
    """

    def __init__(self, message: str, *, released: bool) -> None:
        super().__init__(message)
        self.released = released


@dataclass
class GradeOutcome:
    """What `submission_grade` did: `graded` is False when the claim failed (nothing to do)."""

    submission_id: int
    graded: bool
    verdict: str = ""
    claim: int = 0


def _interrupt(submission_id: int, claim: int, reason: str, result: GradeResult | None = None) -> GradingInterrupted:
    if claim >= settings.GRADER_MAX_CLAIMS:
        submission_fail(submission_id, claim=claim, reason=reason, result=result)
        return GradingInterrupted(reason, released=False)
    released = submission_release(submission_id, claim=claim)
    return GradingInterrupted(reason, released=released)


def submission_grade(
    submission_id: int, *, worker: str | None = None, engine: Engine | None = None, seed: int | None = None
) -> GradeOutcome:
    """Claim the submission, grade it with the engine and store the verdict.

    Returns GradeOutcome(graded=False) when the claim fails (another message already
    took it, or it is finished). Raises GradingInterrupted when the grader failed
    (the engine raised, or reported an internal error): the row is released for a
    retry, or marked FAILED once it has been claimed GRADER_MAX_CLAIMS times. A sandbox
    lost under the submission is retried once inside the engine; when that retry is lost
    too (SandboxLost without a retry) the row is marked FAILED at once, never claimed again.
    """
    submission = submission_claim(submission_id, worker=worker)
    if submission is None:
        return GradeOutcome(submission_id=submission_id, graded=False)
    claim = submission.claim_count
    from grader.sandbox.limits import SandboxLost

    try:
        from grader.engine import Engine
        from grader.spec import ExerciseSpec

        spec = ExerciseSpec.from_model(submission.exercise)
        engine = engine or Engine.get()
        progress = _StageRecorder(submission_id, claim)
        result = engine.grade(spec, submission.code, seed=seed, on_stage=progress)
    except GradingInterrupted:
        raise
    except SandboxLost as lost:
        if lost.retry:
            raise _interrupt(submission_id, claim, f"SandboxLost: {lost}") from lost
        # The engine already gave the submission its one retry: end it now, not blamed on the learner.
        submission_fail(submission_id, claim=claim, reason=f"SandboxLost: {lost}")
        raise GradingInterrupted(str(lost), released=False) from lost
    except Exception as error:
        # SoftTimeLimitExceeded lands here too: a grading that long is the grader's problem.
        logger.exception("grading submission %s raised", submission_id)
        raise _interrupt(submission_id, claim, f"{type(error).__name__}: {error}") from error
    if result.is_internal_error:
        raise _interrupt(submission_id, claim, result.feedback or "internal error", result)
    if not submission_finish(submission_id, claim=claim, result=result):
        logger.warning("submission %s: claim %s went stale while grading; verdict dropped", submission_id, claim)
        return GradeOutcome(submission_id=submission_id, graded=False, claim=claim)
    return GradeOutcome(submission_id=submission_id, graded=True, verdict=result.verdict.value, claim=claim)


class _StageRecorder:
    """The engine's `on_stage` callback: one conditional UPDATE per stage reached."""

    def __init__(self, submission_id: int, claim: int) -> None:
        self.submission_id = submission_id
        self.claim = claim
        self.previous: Stage | None = Stage.SANDBOX

    def __call__(self, stage: Stage) -> None:
        stage = Stage(stage)
        if stage == self.previous:
            return
        submission_record_stage(self.submission_id, claim=self.claim, stage=stage, previous=self.previous)
        self.previous = stage


# --- Sweeping ------------------------------------------------------------------------


@dataclass
class SweepReport:
    """Ids the sweeper re-sent (stale QUEUED), reset and re-sent (stuck RUNNING), or gave up on."""

    requeued: list[int] = field(default_factory=list)
    reset: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, list[int]]:
        return {"requeued": self.requeued, "reset": self.reset, "failed": self.failed, "unsent": self.unsent}


def submission_sweep(
    *,
    now: datetime | None = None,
    queued_after_s: float | None = None,
    running_after_s: float | None = None,
    enqueue: Callable[[Submission], bool] = submission_enqueue,
) -> SweepReport:
    """Find submissions whose message was lost and send them again.

    - QUEUED and never sent (Redis was down at submit), or sent more than
      `queued_after_s` ago (default GRADER_REQUEUE_AFTER_S): sent again.
    - RUNNING for longer than `running_after_s` (default: the task's hard time limit
      plus GRADER_RUNNING_GRACE_S), so its worker is dead: reset to QUEUED (a
      conditional update on the claim it had) and sent again; after
      GRADER_MAX_CLAIMS claims it is marked FAILED instead.
    Duplicate messages are harmless: the claim lets one through.
    """
    now = now or timezone.now()
    if queued_after_s is None:
        queued_after_s = settings.GRADER_REQUEUE_AFTER_S
    if running_after_s is None:
        running_after_s = settings.GRADING_HARD_TIME_LIMIT_S + settings.GRADER_RUNNING_GRACE_S
    report = SweepReport()

    stuck = Submission.objects.filter(
        status=SubmissionStatus.RUNNING, started_at__lt=now - timedelta(seconds=running_after_s)
    ).values_list("pk", "claim_count")[:SWEEP_BATCH]
    for pk, claim in stuck:
        if claim >= settings.GRADER_MAX_CLAIMS:
            if submission_fail(pk, claim=claim, reason=f"worker lost {claim} times while grading"):
                report.failed.append(pk)
        elif submission_release(pk, claim=claim):
            report.reset.append(pk)

    stale = Submission.objects.filter(
        Q(enqueued_at__isnull=True, created_at__lt=now - timedelta(seconds=UNSENT_GRACE_S))
        | Q(enqueued_at__lt=now - timedelta(seconds=queued_after_s))
        | Q(pk__in=report.reset),
        status=SubmissionStatus.QUEUED,
    ).order_by("created_at")[:SWEEP_BATCH]
    for submission in stale:
        if not enqueue(submission):
            report.unsent.append(submission.pk)
            continue
        if submission.pk not in report.reset:
            report.requeued.append(submission.pk)
    if report.requeued or report.reset or report.failed or report.unsent:
        logger.info("sweep: %s", report.to_json())
    return report
