"""Regrading an assignment: a dry run shows old -> new without counting, applying counts, both results kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from courses import regrades, services
from courses.models import (
    AssignmentScore,
    GradeChange,
    GradeChangeCause,
    RegradeJob,
    RegradeMode,
    RegradeStatus,
    SubmissionRegrade,
)
from grader.models import Submission
from tests.course_helpers import enroll, graded_submission, make_assignment, make_course, make_exercise, make_ta

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(
    instructor: User, learner: User, other_learner: User, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> Any:
    monkeypatch.setattr(regrades, "regrade_enqueue", len)
    course = make_course(instructor)
    enroll(course, learner, other_learner)
    exercise = make_exercise()
    assignment = make_assignment(course, [exercise])
    with django_capture_on_commit_callbacks(execute=True):
        first = graded_submission(learner, exercise, at=timezone.now() - timedelta(hours=2), score=0.5)
        second = graded_submission(other_learner, exercise, at=timezone.now() - timedelta(hours=1), score=1.0)
    return assignment, first, second


def _run(job: RegradeJob, scores: dict[int, float], captured: Any) -> None:
    """Run every queued regrade of the job as a worker would, with the new scores given per submission."""

    def grade(submission: Submission) -> dict[str, Any]:
        score = scores[submission.pk]
        return {"verdict": "accepted" if score == 1.0 else "wrong_answer", "score": score, "checks": []}

    with captured(execute=True):
        for regrade_id in job.results.values_list("pk", flat=True):
            assert regrades.submission_regrade_run(regrade_id, grade=grade)


def test_a_dry_run_shows_who_changes_and_counts_nothing(
    instructor: User, learner: User, setup: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, first, second = setup
    job = regrades.regrade_start(assignment, by=instructor, dry_run=True)
    assert (job.mode, job.total) == (RegradeMode.PREVIEW, 2)
    _run(job, {first.pk: 1.0, second.pk: 1.0}, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.status, job.done) == (RegradeStatus.DONE, 2)
    assert job.summary["verdicts_changed"] == 1
    assert job.summary["points_changed"] == 1
    assert job.summary["changes"] == [
        {
            "learner": "ada",
            "learner_id": learner.pk,
            "item": assignment.items.get().label(),
            "item_id": assignment.items.get().pk,
            "old": 5.0,
            "new": 10.0,
        }
    ]
    assert AssignmentScore.objects.get(learner=learner).score == 5.0


def test_applying_counts_the_new_results_and_keeps_the_old_ones(
    instructor: User, learner: User, setup: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, first, second = setup
    job = regrades.regrade_start(assignment, by=instructor, dry_run=False)
    _run(job, {first.pk: 1.0, second.pk: 0.25}, django_capture_on_commit_callbacks)
    assert AssignmentScore.objects.get(learner=learner).score == 10.0
    assert AssignmentScore.objects.get(learner__username="grace").score == 2.5
    first.refresh_from_db()
    assert (first.score, first.verdict, first.graded_count) == (0.5, "wrong_answer", 1)
    kept = SubmissionRegrade.objects.get(submission=first)
    assert (kept.old_score, kept.new_score, kept.old_verdict, kept.new_verdict) == (
        0.5,
        1.0,
        "wrong_answer",
        "accepted",
    )
    change = GradeChange.objects.get(learner=learner, cause=GradeChangeCause.REGRADE)
    assert (change.old_points, change.new_points, change.changed_by) == (5.0, 10.0, instructor)
    job.refresh_from_db()
    assert job.summary["points_changed"] == 2


def test_a_redelivered_regrade_message_does_nothing(
    instructor: User, setup: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, first, second = setup
    job = regrades.regrade_start(assignment, by=instructor, dry_run=False)
    _run(job, {first.pk: 1.0, second.pk: 1.0}, django_capture_on_commit_callbacks)
    calls: list[int] = []
    for regrade_id in job.results.values_list("pk", flat=True):
        assert not regrades.submission_regrade_run(regrade_id, grade=lambda s: calls.append(s.pk) or {})
    assert calls == []
    job.refresh_from_db()
    assert job.done == 2


def test_a_grader_failure_keeps_the_old_result_and_is_reported(
    instructor: User, learner: User, setup: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assignment, _first, _second = setup
    job = regrades.regrade_start(assignment, by=instructor, dry_run=False)

    def broken(submission: Submission) -> dict[str, Any]:
        raise RuntimeError("sandbox gone")

    with django_capture_on_commit_callbacks(execute=True):
        for regrade_id in job.results.values_list("pk", flat=True):
            regrades.submission_regrade_run(regrade_id, grade=broken)
    job.refresh_from_db()
    assert (job.status, job.summary["failed"]) == (RegradeStatus.DONE, 2)
    assert AssignmentScore.objects.get(learner=learner).score == 5.0


def test_teaching_assistants_cannot_start_a_regrade(learner: User, setup: Any) -> None:
    assignment, _, _ = setup
    ta = User.objects.create_user("tara")
    make_ta(assignment.course, ta)
    with pytest.raises(services.CourseForbidden):
        regrades.regrade_start(assignment, by=ta, dry_run=True)
    with pytest.raises(services.CourseForbidden):
        regrades.regrade_start(assignment, by=learner, dry_run=True)
    assert not RegradeJob.objects.exists()


@pytest.mark.sandbox
def test_a_regrade_grades_the_stored_code_again_in_the_real_sandbox(
    instructor: User, learner: User, engine: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from tests.submission_helpers import exercise_from_folder, solution

    monkeypatch.setattr(regrades, "regrade_enqueue", len)
    course = make_course(instructor)
    enroll(course, learner)
    exercise = exercise_from_folder("linear-backward")
    assignment = make_assignment(course, [exercise])
    with django_capture_on_commit_callbacks(execute=True):
        submission = graded_submission(learner, exercise, at=timezone.now(), score=0.25)
    Submission.objects.filter(pk=submission.pk).update(code=solution("linear-backward"))
    job = regrades.regrade_start(assignment, by=instructor, dry_run=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert regrades.submission_regrade_run(job.results.get().pk)
    regrade = SubmissionRegrade.objects.get(job=job)
    assert (regrade.new_verdict, regrade.new_score) == ("accepted", 1.0)
    assert AssignmentScore.objects.get(learner=learner).score == 10.0


def test_the_sweeper_resends_regrades_whose_worker_died_or_whose_messages_were_lost(
    instructor: User, setup: Any, settings: Any
) -> None:
    assignment, _, _ = setup
    job = regrades.regrade_start(assignment, by=instructor, dry_run=False)
    dead, lost = list(job.results.order_by("pk"))
    long_ago = timezone.now() - timedelta(hours=1)
    SubmissionRegrade.objects.filter(pk=dead.pk).update(status=RegradeStatus.RUNNING, started_at=long_ago)
    RegradeJob.objects.filter(pk=job.pk).update(created_at=long_ago)
    sent: list[list[int]] = []
    report = regrades.regrade_sweep(enqueue=sent.append)
    assert report["reset"] == [dead.pk]
    assert sent == [[dead.pk, lost.pk]]
    assert SubmissionRegrade.objects.get(pk=dead.pk).status == RegradeStatus.QUEUED
    # A job that is making progress is left alone.
    SubmissionRegrade.objects.filter(pk=dead.pk).update(status=RegradeStatus.RUNNING, started_at=timezone.now())
    assert regrades.regrade_sweep(enqueue=sent.append) == {"reset": [], "resent": []}
