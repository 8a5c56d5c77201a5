"""LTI 1.3 against a simulated LMS (tests/lti_platform.py): scores sent to the LMS exactly once (AGS),
from a launch to the score the LMS records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from courses.models import Assignment, AssignmentScore
from lti import services
from lti.models import LinkTarget, LtiIdentity, OutboxStatus, ScoreOutbox
from tests.lti_helpers import (  # noqa: F401  (fixtures are found by name)
    assignment,
    enqueued,
    fresh_cache,
    launch,
    linked,
    lms,
    registered,
)
from tests.lti_platform import SimulatedPlatform

pytestmark = pytest.mark.django_db


# --- Scores (AGS) ---------------------------------------------------------------------------


def _learner_in_lms(client: Client, lms: SimulatedPlatform, linked: LinkTarget) -> User:
    assert launch(client, lms, custom={"gradlab_link": linked.token}).status_code == 302
    return LtiIdentity.objects.get(subject="lms-user-1").user


def _set_total(assignment: Assignment, learner: User, score: float) -> AssignmentScore:
    """Change the learner's total as courses does (a saved AssignmentScore)."""
    row, created = AssignmentScore.objects.get_or_create(
        assignment=assignment, learner=learner, defaults={"score": score, "max_score": 10.0}
    )
    if not created:
        row.score = score
        row.save()
    return row


def test_a_score_change_writes_one_outbox_row_in_the_same_transaction(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget, assignment: Assignment, enqueued: list[int]
) -> None:
    learner = _learner_in_lms(client, lms, linked)
    row = _set_total(assignment, learner, 7.5)
    outbox = ScoreOutbox.objects.get()
    assert (outbox.score_given, outbox.score_maximum, outbox.subject) == (7.5, 10.0, "lms-user-1")
    assert outbox.lineitem_url == lms.lineitem_url(1) and outbox.score_time == row.updated_at
    # The same version written again (the after-commit signal, the sweeper) adds nothing.
    services.outbox_write_for(assignment.pk, learner.pk)
    assert services.outbox_reconcile() == 0
    assert ScoreOutbox.objects.count() == 1
    # A newer score supersedes the unsent one.
    _set_total(assignment, learner, 9.0)
    assert list(ScoreOutbox.objects.order_by("score_time").values_list("score_given", "status")) == [
        (7.5, OutboxStatus.SUPERSEDED),
        (9.0, OutboxStatus.PENDING),
    ]


def test_a_score_is_delivered_exactly_once_when_the_lms_is_down_then_up(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    assignment: Assignment,
    enqueued: list[int],
    settings: Any,
) -> None:
    settings.LTI_SCORE_RETRY_BASE_S = 10
    settings.LTI_SCORE_RETRY_CAP_S = 40
    learner = _learner_in_lms(client, lms, linked)
    _set_total(assignment, learner, 8.0)
    outbox = ScoreOutbox.objects.get()
    lms.down = True
    now = timezone.now()
    delays = []
    for _ in range(4):
        outcome = services.score_send(outbox.pk, now=now)
        assert not outcome.sent and outcome.retry_in_s is not None
        delays.append(outcome.retry_in_s)
        # A message that arrives before the row is due sends nothing.
        assert services.score_send(outbox.pk, now=now).note == "not due yet"
        now += timedelta(seconds=outcome.retry_in_s)
    assert delays == [10, 20, 40, 40]  # exponential, capped
    assert lms.refused_posts == 4 and lms.scores == []
    outbox.refresh_from_db()
    assert outbox.status == OutboxStatus.PENDING and "503" in outbox.last_error and outbox.attempts == 4
    lms.down = False
    assert services.score_send(outbox.pk, now=now).sent
    # Redelivered messages and the sweeper find it delivered: nothing more is sent.
    assert not services.score_send(outbox.pk, now=now + timedelta(hours=1)).sent
    assert services.outbox_sweep(now=now + timedelta(hours=1)) == []
    assert len(lms.scores) == 1
    sent = lms.scores[0]
    assert sent["path"] == "/lineitems/1/scores"
    assert sent["score"]["scoreGiven"] == 8.0 and sent["score"]["scoreMaximum"] == 10.0
    assert sent["score"]["userId"] == "lms-user-1" and sent["score"]["gradingProgress"] == "FullyGraded"
    outbox.refresh_from_db()
    assert outbox.status == OutboxStatus.DELIVERED and outbox.delivered_at is not None
    assert sent["score"]["timestamp"] == outbox.score_time.isoformat()


def test_the_sweeper_resends_a_row_whose_worker_died_while_sending(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    assignment: Assignment,
    enqueued: list[int],
    settings: Any,
) -> None:
    learner = _learner_in_lms(client, lms, linked)
    _set_total(assignment, learner, 5.0)
    outbox = ScoreOutbox.objects.get()
    enqueued.clear()
    long_ago = timezone.now() - timedelta(seconds=settings.LTI_SENDING_STALE_S + 1)
    ScoreOutbox.objects.filter(pk=outbox.pk).update(status=OutboxStatus.SENDING, claimed_at=long_ago)
    assert services.score_send(outbox.pk).note == "already handled"  # another worker holds it
    assert services.outbox_sweep() == [outbox.pk] and enqueued == [outbox.pk]
    assert services.score_send(outbox.pk).sent and len(lms.scores) == 1


def test_a_refused_score_waits_for_a_person_and_can_be_sent_again(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget, assignment: Assignment, enqueued: list[int]
) -> None:
    learner = _learner_in_lms(client, lms, linked)
    _set_total(assignment, learner, 5.0)
    outbox = ScoreOutbox.objects.get()
    ScoreOutbox.objects.filter(pk=outbox.pk).update(lineitem_url=f"{lms.url}/no-such-lineitem")
    assert services.score_send(outbox.pk).retry_in_s is None
    outbox.refresh_from_db()
    assert outbox.status == OutboxStatus.FAILED and "404" in outbox.last_error
    ScoreOutbox.objects.filter(pk=outbox.pk).update(lineitem_url=lms.lineitem_url(1))
    assert services.outbox_resend([outbox.pk]) == 1
    assert services.score_send(outbox.pk).sent and len(lms.scores) == 1


# --- From start to end ------------------------------------------------------------------------


@pytest.fixture
def eager_celery(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tasks sent by name run in this process at once, as a worker would run them; returns their names."""
    import lti.tasks  # noqa: F401  (registers the tasks, as a worker's autodiscovery does)
    from gradlab.celery import app

    ran: list[str] = []

    def run_here(name: str, args: Any = (), kwargs: Any = None, **options: Any) -> Any:
        ran.append(name)
        return app.tasks[name].apply(args=args, kwargs=kwargs or {})

    monkeypatch.setattr(app, "send_task", run_here)
    return ran


@pytest.mark.sandbox
def test_launch_submit_and_the_score_reaches_the_lms(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    assignment: Assignment,
    engine: Any,
    eager_celery: list[str],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The learner opens the LMS link, submits the exercise, it is graded in the sandbox, the LMS gets 10/10."""
    from grader import services as grading
    from grader.models import Submission
    from tests.submission_helpers import solution

    queued: list[int] = []
    monkeypatch.setattr(grading, "submission_enqueue", lambda submission: queued.append(submission.pk) or True)
    response = launch(client, lms, custom={"gradlab_link": linked.token})
    assert response.status_code == 302 and response["Location"] == assignment.get_absolute_url()
    page = client.get(response["Location"], secure=True)
    assert page.status_code == 200 and b"Backprop homework" in page.content
    assert lms.url in page["Content-Security-Policy"]  # framed by the LMS
    with django_capture_on_commit_callbacks(execute=True):
        submitted = client.post("/exercises/linear-backward/", {"code": solution()}, secure=True)
    assert submitted.status_code == 302
    submission = Submission.objects.get()
    assert queued == [submission.pk] and submission.user == LtiIdentity.objects.get().user
    with django_capture_on_commit_callbacks(execute=True):  # the worker's transaction commits
        outcome = grading.submission_grade(submission.pk, engine=engine)
    assert outcome.verdict == "accepted"
    assert AssignmentScore.objects.get(assignment=assignment).score == 10.0
    assert eager_celery == ["lti.tasks.send_score"]
    outbox = ScoreOutbox.objects.get()
    assert outbox.status == OutboxStatus.DELIVERED, (outbox.attempts, outbox.last_error, outbox.next_attempt_at)
    assert [sent["score"]["scoreGiven"] for sent in lms.scores] == [10.0]
    assert lms.scores[0]["score"]["scoreMaximum"] == 10.0
    assert lms.scores[0]["score"]["userId"] == "lms-user-1"


def test_access_tokens_are_reused_across_scores(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget, assignment: Assignment, enqueued: list[int]
) -> None:
    learner = _learner_in_lms(client, lms, linked)
    for points in (3.0, 4.0):
        _set_total(assignment, learner, points)
        assert services.score_send(ScoreOutbox.objects.get(score_given=points).pk).sent
    assert [sent["score"]["scoreGiven"] for sent in lms.scores] == [3.0, 4.0]
    assert len(lms.token_requests) == 1
    lms.tokens.clear()  # the LMS revokes its tokens: the next score gets a 401, then a new token
    _set_total(assignment, learner, 5.0)
    row = ScoreOutbox.objects.get(score_given=5.0)
    assert services.score_send(row.pk).retry_in_s is not None
    assert services.score_send(row.pk, now=timezone.now() + timedelta(hours=1)).sent
    assert len(lms.token_requests) == 2 and len(lms.scores) == 3


def test_a_failing_listener_loses_no_score(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    assignment: Assignment,
    enqueued: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    learner = _learner_in_lms(client, lms, linked)
    real_write = services.outbox_write_for

    def broken(*args: Any) -> Any:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services, "outbox_write_for", broken)
    _set_total(assignment, learner, 6.0)  # the grading itself is not undone
    assert AssignmentScore.objects.get().score == 6.0 and not ScoreOutbox.objects.exists()
    monkeypatch.setattr(services, "outbox_write_for", real_write)
    from lti.tasks import sweep_outbox

    outcome = sweep_outbox.apply().result
    assert outcome["reconciled"] == 1
    row = ScoreOutbox.objects.get()
    assert outcome["resent"] == [row.pk] and row.score_given == 6.0
    assert services.score_send(row.pk).sent and lms.scores[0]["score"]["scoreGiven"] == 6.0
    assert sweep_outbox.apply().result["reconciled"] == 0
