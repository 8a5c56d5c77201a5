"""Submission services (grader/services.py): create and enqueue, claim, grade, finish, sweep.

Grading here runs the real engine and sandbox in this process; the Celery worker and
Redis are exercised in tests/test_celery_integration.py.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from grader import services
from grader.diagnosis import Diagnosis, Mistake
from grader.models import Exercise, Submission, SubmissionStatus
from grader.result import CheckResult, GradeResult
from grader.verdicts import Isolation, Stage, Verdict
from tests.submission_helpers import exercise_from_folder, solution, wrong

send_wake_up = services.submission_enqueue  # the real one (some tests replace it)


@pytest.fixture
def exercise(db: None) -> Exercise:
    return exercise_from_folder("linear-backward")


@pytest.fixture
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the ids whose wake-up message would be sent, instead of sending it."""
    sent: list[int] = []

    def record(submission: Submission) -> bool:
        sent.append(submission.pk)
        return True

    monkeypatch.setattr(services, "submission_enqueue", record)
    return sent


def create(
    user: User, code: str | bytes = "def linear_backward(dout, x, w, b):\n    pass\n", slug: str = "linear-backward"
):
    return services.submission_create(user=user, exercise_slug=slug, code=code)


# --- Create ---------------------------------------------------------------------------


def test_create_stores_a_queued_row_and_sends_its_message_after_commit(
    learner: User, exercise: Exercise, no_enqueue: list[int], django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission = create(learner)
    assert no_enqueue == []  # nothing is sent before the row is committed
    assert len(callbacks) == 1
    callbacks[0]()
    assert no_enqueue == [submission.pk]
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.QUEUED
    assert submission.stage == Stage.QUEUED
    assert submission.attempt == 1
    assert submission.claim_count == 0


def test_attempt_numbers_count_up_per_learner_and_exercise(
    learner: User, other_learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    first, second = create(learner), create(learner)
    theirs = create(other_learner)
    assert (first.attempt, second.attempt, theirs.attempt) == (1, 2, 1)


@pytest.mark.parametrize(
    ("code", "error", "fragment"),
    [
        ("x" * (64 * 1024 + 1), services.CodeTooLarge, "the limit is 64 KiB"),
        (b"def f():\n    return '\xff'\n", services.CodeNotUtf8, "not valid UTF-8"),
        ("def f():\n    return '\ud800'\n", services.CodeNotUtf8, "not valid UTF-8"),
        ("   \n\n", services.CodeEmpty, "empty"),
        ("a = 1\x00", services.CodeNotUtf8, "NUL"),
    ],
)
def test_bad_code_is_refused_with_a_clear_message_and_nothing_is_stored(
    learner: User, exercise: Exercise, no_enqueue: list[int], code: str | bytes, error: type, fragment: str
) -> None:
    with pytest.raises(error) as raised:
        create(learner, code)
    assert fragment in raised.value.message
    assert Submission.objects.count() == 0


def test_code_of_exactly_the_limit_is_accepted(learner: User, exercise: Exercise, no_enqueue: list[int]) -> None:
    code = "#" * (64 * 1024 - 1) + "\n"
    assert create(learner, code).code == code


@pytest.mark.parametrize("slug", ["no-such-exercise", "../etc", "linear-backward\x00", "A" * 300])
def test_an_unknown_exercise_is_refused(learner: User, exercise: Exercise, no_enqueue: list[int], slug: str) -> None:
    with pytest.raises(services.UnknownExercise):
        create(learner, slug=slug)
    assert Submission.objects.count() == 0


def test_a_retired_exercise_takes_no_submissions(learner: User, exercise: Exercise, no_enqueue: list[int]) -> None:
    Exercise.objects.filter(pk=exercise.pk).update(is_active=False)
    with pytest.raises(services.UnknownExercise):
        create(learner)


def test_an_anonymous_user_cannot_submit(exercise: Exercise, no_enqueue: list[int]) -> None:
    with pytest.raises(services.NotAuthenticated):
        services.submission_create(user=AnonymousUser(), exercise_slug="linear-backward", code="x = 1")
    assert Submission.objects.count() == 0


def test_the_rate_limit_refuses_the_next_submission_and_says_when_to_retry(
    learner: User, other_learner: User, exercise: Exercise, no_enqueue: list[int], settings
) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = 3
    for _ in range(3):
        create(learner)
    with pytest.raises(services.RateLimited) as raised:
        create(learner)
    assert raised.value.http_status == 429
    assert 1 <= raised.value.retry_after_s <= 60
    assert Submission.objects.filter(user=learner).count() == 3
    create(other_learner)  # the limit is per user


def test_the_rate_limit_frees_a_slot_once_the_oldest_submission_is_a_minute_old(
    learner: User, exercise: Exercise, no_enqueue: list[int], settings
) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = 2
    first, _ = create(learner), create(learner)
    Submission.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    create(learner)


def test_enqueue_keeps_the_row_when_the_broker_is_unreachable(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    from tests.test_celery_integration import broker_at, free_port

    submission = create(learner)
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        assert send_wake_up(submission) is False
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.QUEUED
    assert submission.enqueued_at is None
    assert submission.is_waiting_for_broker()


# --- Claim ----------------------------------------------------------------------------


def test_only_one_claim_of_a_queued_submission_succeeds(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    submission = create(learner)
    first = services.submission_claim(submission.pk, worker="host-a:1")
    second = services.submission_claim(submission.pk, worker="host-b:2")
    assert first is not None
    assert second is None
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.RUNNING
    assert submission.claim_count == 1
    assert submission.worker == "host-a:1"
    assert submission.started_at is not None


def test_a_row_left_running_by_a_dead_process_of_this_machine_is_taken_over(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    submission = create(learner)
    dead_pid = _dead_pid()
    services.submission_claim(submission.pk, worker=f"{socket.gethostname()}:{dead_pid}")
    taken = services.submission_claim(submission.pk)
    assert taken is not None
    assert taken.claim_count == 2
    assert taken.worker == services.worker_identity()


def test_a_row_running_in_a_live_process_or_on_another_machine_is_left_alone(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    live, remote = create(learner), create(learner)
    services.submission_claim(live.pk, worker=f"{socket.gethostname()}:1")  # pid 1 is alive
    services.submission_claim(remote.pk, worker=f"another-machine:{_dead_pid()}")
    assert services.submission_claim(live.pk) is None
    assert services.submission_claim(remote.pk) is None


def test_a_stale_claim_cannot_write_a_verdict(learner: User, exercise: Exercise, no_enqueue: list[int]) -> None:
    submission = create(learner)
    services.submission_claim(submission.pk, worker="a:1")
    services.submission_release(submission.pk, claim=1)  # the sweeper wrote the worker off
    services.submission_claim(submission.pk, worker="b:2")
    assert services.submission_record_stage(submission.pk, claim=1, stage=Stage.CHECKS) is False
    assert services.submission_finish(submission.pk, claim=1, result={"verdict": "accepted", "score": 1.0}) is False
    assert services.submission_finish(submission.pk, claim=2, result={"verdict": "wrong_answer", "score": 0.5}) is True
    submission.refresh_from_db()
    assert (submission.verdict, submission.graded_count) == ("wrong_answer", 1)


def test_finish_stores_the_typed_result_once_and_derives_the_columns_from_it(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    submission = create(learner)
    services.submission_claim(submission.pk, worker="a:1")
    result = GradeResult(
        verdict=Verdict.WRONG_ANSWER,
        score=0.25,
        isolation=Isolation.NAMESPACES_SECCOMP,
        checks=[CheckResult("load", True, "defines linear_backward"), CheckResult("outputs", False, "dx: shape")],
        diagnosis=[Diagnosis("dx", Mistake.TRANSPOSED, "dx looks transposed", "why")],
        feedback="1 of 2 checks passed",
        timings={"sandbox_s": 0.002, "total_s": 0.05},
    )
    assert services.submission_finish(submission.pk, claim=1, result=result)
    submission.refresh_from_db()
    assert submission.result == result.to_json()
    assert (submission.verdict, submission.score, submission.isolation) == ("wrong_answer", 0.25, "namespaces+seccomp")
    assert submission.phase_times == {"sandbox_s": 0.002, "total_s": 0.05}
    assert submission.grade_result() == result
    assert list(submission.diagnoses.values_list("output", "mistake")) == [("dx", "transposed")]


# --- Grade (real engine and sandbox) ---------------------------------------------------


@pytest.mark.sandbox
def test_grading_a_correct_solution_stores_accepted_with_every_phase_timestamp(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    submission = create(learner, solution())
    outcome = services.submission_grade(submission.pk)
    assert outcome.graded
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.GRADED
    assert submission.verdict == Verdict.ACCEPTED
    assert submission.score == 1.0
    assert submission.stage == Stage.DONE
    assert submission.isolation
    assert (submission.claim_count, submission.graded_count) == (1, 1)
    stamps = [
        submission.created_at,
        submission.started_at,
        submission.sandbox_ready_at,
        submission.checks_finished_at,
        submission.training_finished_at,
        submission.finished_at,
    ]
    assert all(stamp is not None for stamp in stamps)
    assert stamps == sorted(stamps)
    assert submission.result["training"]["learner_loss"]
    assert set(submission.phase_times) >= {"sandbox_s", "checks_s", "total_s"}


@pytest.mark.sandbox
def test_grading_a_transposed_gradient_stores_its_diagnosis(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    submission = create(learner, wrong("linear-backward", "dw_transposed"))
    services.submission_grade(submission.pk)
    submission.refresh_from_db()
    assert submission.verdict == Verdict.WRONG_ANSWER
    assert submission.score is not None and submission.score < 1
    assert [d["mistake"] for d in submission.result["diagnosis"]] == ["transposed"]


@pytest.mark.sandbox
def test_a_second_message_for_the_same_submission_grades_nothing(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    submission = create(learner, solution())
    assert services.submission_grade(submission.pk).graded
    assert not services.submission_grade(submission.pk).graded
    submission.refresh_from_db()
    assert (submission.claim_count, submission.graded_count) == (1, 1)


class ExplodingEngine:
    """An engine whose grading raises, as a broken grader would."""

    def grade(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("the grader broke")


def test_a_grader_failure_releases_the_row_for_a_retry_until_the_claim_cap_then_fails_it(
    learner: User, exercise: Exercise, no_enqueue: list[int], settings
) -> None:
    settings.GRADER_MAX_CLAIMS = 2
    submission = create(learner)
    with pytest.raises(services.GradingInterrupted) as first:
        services.submission_grade(submission.pk, engine=ExplodingEngine())  # type: ignore[arg-type]
    assert first.value.released
    submission.refresh_from_db()
    assert (submission.status, submission.claim_count) == (SubmissionStatus.QUEUED, 1)
    with pytest.raises(services.GradingInterrupted) as second:
        services.submission_grade(submission.pk, engine=ExplodingEngine())  # type: ignore[arg-type]
    assert not second.value.released
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED
    assert submission.verdict == Verdict.INTERNAL_ERROR
    assert "not a problem with your code" in submission.result["feedback"]
    assert submission.graded_count == 1


# --- Sweep ----------------------------------------------------------------------------


def test_the_sweeper_resends_unsent_and_stale_queued_rows_only(
    learner: User, exercise: Exercise, no_enqueue: list[int]
) -> None:
    now = timezone.now()
    unsent, stale, fresh, just_created = create(learner), create(learner), create(learner), create(learner)
    Submission.objects.filter(pk=unsent.pk).update(created_at=now - timedelta(seconds=30), enqueued_at=None)
    Submission.objects.filter(pk=stale.pk).update(enqueued_at=now - timedelta(seconds=600))
    Submission.objects.filter(pk=fresh.pk).update(enqueued_at=now - timedelta(seconds=1))
    Submission.objects.filter(pk=just_created.pk).update(enqueued_at=None)
    sent: list[int] = []
    report = services.submission_sweep(now=now, queued_after_s=60, enqueue=lambda s: sent.append(s.pk) or True)
    assert sorted(report.requeued) == sorted([unsent.pk, stale.pk])
    assert sorted(sent) == sorted([unsent.pk, stale.pk])


def test_the_sweeper_resets_a_row_running_past_the_hard_limit_and_resends_it(
    learner: User, exercise: Exercise, no_enqueue: list[int], settings
) -> None:
    stuck, running = create(learner), create(learner)
    services.submission_claim(stuck.pk, worker="gone:1")
    services.submission_claim(running.pk, worker="busy:1")
    limit = settings.GRADING_HARD_TIME_LIMIT_S + settings.GRADER_RUNNING_GRACE_S
    Submission.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(seconds=limit + 1))
    sent: list[int] = []
    report = services.submission_sweep(enqueue=lambda s: sent.append(s.pk) or True)
    assert report.reset == [stuck.pk]
    assert sent == [stuck.pk]
    stuck.refresh_from_db()
    running.refresh_from_db()
    assert (stuck.status, stuck.worker) == (SubmissionStatus.QUEUED, "")
    assert running.status == SubmissionStatus.RUNNING


def test_the_sweeper_gives_up_on_a_row_that_lost_its_worker_too_often(
    learner: User, exercise: Exercise, no_enqueue: list[int], settings
) -> None:
    settings.GRADER_MAX_CLAIMS = 1
    submission = create(learner)
    services.submission_claim(submission.pk, worker="gone:1")
    report = services.submission_sweep(running_after_s=0, now=timezone.now() + timedelta(seconds=1))
    assert report.failed == [submission.pk]
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED
    assert submission.verdict == Verdict.INTERNAL_ERROR


def _dead_pid() -> int:
    """A pid that no process has (one of our own children, reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
