"""Dashboard figures against a small fixture whose every figure is worked out by hand below."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from dashboard import aggregates, figures, live, quiz_stats, selectors
from grader.models import Exercise, Submission, SubmissionDiagnosis, SubmissionStatus
from gradlab import stats
from gradlab.redis_embedded import ensure_redis
from lessons.models import Lesson
from quizzes.models import QuizAttempt, QuizQuestion
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

MS = timedelta(milliseconds=1)


@pytest.fixture(autouse=True)
def _no_figure_cache(settings: Any) -> None:
    """Each test sees its own rows, not figures cached by an earlier test."""
    settings.DASHBOARD_CACHE_S = 0


def _exercise(slug: str, order: int) -> Exercise:
    return Exercise.objects.create(
        slug=slug,
        title=slug.replace("-", " ").capitalize(),
        order=order,
        function_name=slug.replace("-", "_"),
        signature=f"{slug.replace('-', '_')}(x)",
        statement_md="Do it.",
        starter_code="def f(x):\n    pass\n",
        reference_solution="def f(x):\n    return x\n",
    )


def _submission(
    user: User,
    exercise: Exercise,
    created: datetime,
    verdict: str,
    *,
    queue_ms: int | None = None,
    checks_ms: int | None = None,
    training_ms: int | None = None,
    total_s: int | None = None,
    diagnosis: list[dict[str, Any]] | None = None,
) -> Submission:
    """A submission with phase timestamps built from the given durations (sandbox start: 2 ms)."""
    submission = Submission.objects.create(user=user, exercise=exercise, code="pass")
    fields: dict[str, Any] = {"created_at": created, "verdict": verdict, "result": {"diagnosis": diagnosis or []}}
    if verdict:
        enqueued = created + 100 * MS
        started = enqueued + queue_ms * MS if queue_ms is not None else None
        ready = started + 2 * MS if started else None
        checks = ready + checks_ms * MS if ready and checks_ms is not None else None
        training = checks + training_ms * MS if checks and training_ms is not None else None
        fields |= {
            "status": SubmissionStatus.GRADED,
            "enqueued_at": enqueued,
            "started_at": started,
            "sandbox_ready_at": ready,
            "checks_finished_at": checks,
            "training_finished_at": training,
            "finished_at": created + timedelta(seconds=total_s or 0),
            "worker": "celery@box",
            "isolation": "namespaces+seccomp",
        }
    Submission.objects.filter(pk=submission.pk).update(**fields)
    # What submission_finish does with a verdict: the dashboard counts diagnoses from this copy.
    SubmissionDiagnosis.store_for(submission.pk, verdict, fields["result"])
    submission.refresh_from_db()
    return submission


@pytest.fixture
def day0() -> datetime:
    """10:00 UTC two days ago, to the second (so every phase lasts whole milliseconds)."""
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2) + timedelta(hours=10)


@pytest.fixture
def graded(day0: datetime, learner: User, other_learner: User) -> dict[str, Any]:
    """Eleven submissions to two exercises by three learners.

    linear-backward: ada wrong, wrong, accepted (3 attempts); grace accepted, accepted
    (1 attempt); hugo wrong, time limit, accepted (3 attempts). relu-backward: ada
    syntax error then forbidden; grace one still queued.
    Queue waits 100..1000 ms over the ten finished ones; checks 10..80 ms over the eight
    that reached them; training 100..400 ms over the four accepted; totals 1..10 s.
    """
    hugo = User.objects.create_user("hugo", password=PASSWORD)
    linear, relu = _exercise("linear-backward", 1), _exercise("relu-backward", 2)
    hour, day = timedelta(hours=1), timedelta(days=1)
    transposed_dw = {"output": "dw", "mistake": "transposed"}
    rows = [
        (learner, linear, day0, "wrong_answer", 100, 10, None, 1, [transposed_dw, {"output": "dx", "mistake": "transposed"}]),
        (learner, linear, day0 + hour, "wrong_answer", 200, 20, None, 2, [transposed_dw]),
        (learner, linear, day0 + 2 * hour, "accepted", 300, 30, 100, 3, None),
        (other_learner, linear, day0 + day, "accepted", 400, 40, 200, 4, None),
        (other_learner, linear, day0 + day + hour, "accepted", 500, 50, 300, 5, None),
        (hugo, linear, day0 + day, "wrong_answer", 600, 60, None, 6,
         [{"output": "db", "mistake": "bias_not_summed"}, transposed_dw, transposed_dw]),
        (hugo, linear, day0 + day + hour, "time_limit_exceeded", 700, 70, None, 7, None),
        (hugo, linear, day0 + day + 2 * hour, "accepted", 800, 80, 400, 8, None),
        (learner, relu, day0, "syntax_error", 900, None, None, 9, None),
        (learner, relu, day0 + 5 * timedelta(minutes=1), "forbidden", 1000, None, None, 10, None),
    ]  # fmt: skip
    made = [
        _submission(user, exercise, created, verdict, queue_ms=q, checks_ms=c, training_ms=t, total_s=s, diagnosis=d)
        for user, exercise, created, verdict, q, c, t, s, d in rows
    ]
    queued = _submission(other_learner, relu, day0, "")
    return {"linear": linear, "relu": relu, "made": made, "queued": queued, "day0": day0}


def _window() -> aggregates.Window:
    return aggregates.window_of(30)


def test_pass_rate_counts_accepted_over_graded_per_exercise(graded: dict[str, Any]) -> None:
    stats = {row.slug: row for row in selectors.exercise_stats(_window())}
    linear, relu = stats["linear-backward"], stats["relu-backward"]
    assert (linear.submissions, linear.graded, linear.accepted) == (8, 8, 4)
    assert linear.pass_rate == 0.5
    assert linear.verdicts == {"wrong_answer": 3, "accepted": 4, "time_limit_exceeded": 1}
    assert (linear.learners, linear.learners_solved) == (3, 3)
    assert (relu.submissions, relu.graded, relu.accepted, relu.pass_rate) == (3, 2, 0, 0.0)
    assert (relu.learners, relu.learners_solved) == (2, 0)


def test_median_attempts_to_first_accept_ignores_later_accepts(graded: dict[str, Any]) -> None:
    stats = {row.slug: row for row in selectors.exercise_stats(_window())}
    # ada 3, grace 1 (her second accept does not count), hugo 3: median 3.
    assert selectors.attempts_to_first_accept(_window())[graded["linear"].pk] == {3: 2, 1: 1}
    assert stats["linear-backward"].median_attempts == 3
    assert stats["relu-backward"].median_attempts is None


def test_median_of_an_even_number_of_learners_is_the_mean_of_the_middle_two() -> None:
    assert aggregates.median_of_histogram({1: 1, 2: 1, 4: 1, 9: 1}) == 3
    assert aggregates.median_of_histogram({}) is None


def test_submissions_per_day_include_empty_days_up_to_today(graded: dict[str, Any]) -> None:
    days = {row.day: (row.submissions, row.accepted) for row in selectors.submissions_per_day(_window())}
    day0 = graded["day0"].date()
    assert days[day0] == (6, 1)
    assert days[day0 + timedelta(days=1)] == (5, 3)
    assert days[day0 + timedelta(days=2)] == (0, 0)
    assert days[day0 - timedelta(days=5)] == (0, 0)
    assert len(days) == 31


def test_diagnoses_count_each_submission_once_per_output_and_mistake(graded: dict[str, Any]) -> None:
    rows = [
        (row.exercise_slug, row.output, row.mistake, row.submissions) for row in selectors.common_diagnoses(_window())
    ]
    assert rows == [
        ("linear-backward", "dw", "transposed", 3),
        ("linear-backward", "db", "bias_not_summed", 1),
        ("linear-backward", "dx", "transposed", 1),
    ]
    top = selectors.common_diagnoses(_window())[0]
    assert top.share == 1.0  # all three wrong answers


def test_latency_percentiles_per_phase_interpolate_like_percentile_cont(graded: dict[str, Any]) -> None:
    latency = {row.key: row for row in selectors.grading_latency(_window())}
    queue = latency["queue"]
    assert queue.count == 10
    assert queue.p50_s == pytest.approx(0.550, abs=1e-6)  # between 500 and 600 ms
    assert queue.p95_s == pytest.approx(0.955, abs=1e-6)  # 900 + 0.55 * 100 ms
    assert latency["sandbox"].p50_s == pytest.approx(0.002, abs=1e-6)
    assert latency["checks"].count == 8
    assert latency["checks"].p50_s == pytest.approx(0.045, abs=1e-6)
    assert latency["checks"].p95_s == pytest.approx(0.0765, abs=1e-6)
    assert latency["training"].count == 4
    assert latency["training"].p50_s == pytest.approx(0.250, abs=1e-6)
    assert latency["training"].p95_s == pytest.approx(0.385, abs=1e-6)
    assert latency["total"].p50_s == pytest.approx(5.5, abs=1e-6)
    assert latency["total"].p95_s == pytest.approx(9.55, abs=1e-6)


def test_latency_keeps_microseconds() -> None:
    assert stats.percentile([0.000125, 0.000375], 0.5) == pytest.approx(0.00025)


def test_incidents_list_forbidden_and_limit_verdicts_newest_first(graded: dict[str, Any]) -> None:
    incidents = selectors.sandbox_incidents()
    assert [incident.verdict for incident in incidents] == ["time_limit_exceeded", "forbidden"]


def test_totals_of_the_window(graded: dict[str, Any]) -> None:
    totals = selectors.totals(_window())
    assert (totals.submissions, totals.graded, totals.accepted, totals.learners) == (11, 10, 4, 3)
    assert totals.pass_rate == 0.4
    in_flight = selectors.in_flight()
    assert (in_flight.queued, in_flight.running) == (1, 0)


def test_a_short_window_leaves_older_submissions_out(graded: dict[str, Any]) -> None:
    window = aggregates.window_of(1, now=graded["day0"] + timedelta(days=1, hours=12))
    stats = {row.slug: row for row in selectors.exercise_stats(window)}
    assert stats["linear-backward"].submissions == 5
    assert stats["relu-backward"].submissions == 0


# --- Quiz item analysis -------------------------------------------------------------


@pytest.fixture
def quiz_answers(db: None) -> dict[str, QuizQuestion]:
    """Eight learners a..h answer three questions (1 = correct, 0 = wrong, - = skipped).

            q1 q2   q3  total
        a   1  1    1   3
        b   1  1    0   2
        c   1  1    -   2
        d   1  0.5  0   1.5   (q2 twice: 0, then a half-right 0.5)
        e   1  0    -   1
        h   -  -    1   1
        f   0  0    0   0
        g   0  -    -   0
    Groups of round(0.27 * 8) = 2: upper {a, b}, lower {f, g}.
    """
    lesson = Lesson.objects.create(slug="backpropagation", title="Backprop", question="?")
    questions = {
        key: QuizQuestion.objects.create(
            lesson=lesson, key=key, order=index, kind="single_choice", prompt_md="?", explanation_md="."
        )
        for index, key in enumerate(["q1", "q2", "q3"])
    }
    table = {
        "a": {"q1": [1], "q2": [1], "q3": [1]},
        "b": {"q1": [1], "q2": [1], "q3": [0]},
        "c": {"q1": [1], "q2": [1]},
        "d": {"q1": [1], "q2": [0, 0.5], "q3": [0]},
        "e": {"q1": [1], "q2": [0]},
        "f": {"q1": [0], "q2": [0], "q3": [0]},
        "g": {"q1": [0]},
        "h": {"q3": [1]},
    }
    for name, answers in table.items():
        user = User.objects.create_user(f"learner-{name}", password=PASSWORD)
        for key, scores in answers.items():
            for variant, score in enumerate(scores):
                QuizAttempt.objects.create(
                    user=user,
                    question=questions[key],
                    variant=variant,
                    answer_text="x",
                    score=score,
                    is_correct=score == 1,
                )
    return questions


def test_quiz_questions_get_percent_correct_and_discrimination(quiz_answers: dict[str, QuizQuestion]) -> None:
    stats = {row.key: row for row in quiz_stats.quiz_question_stats()}
    assert (stats["q1"].learners, stats["q1"].correct) == (7, 5)
    assert stats["q1"].percent_correct == pytest.approx(500 / 7)
    assert stats["q1"].discrimination == 1.0  # a, b right; f, g wrong
    assert (stats["q2"].learners, stats["q2"].correct) == (6, 3)  # d's best is 0.5: not correct
    assert stats["q2"].discrimination == 1.0  # g skipped it: counts as not correct
    assert (stats["q3"].learners, stats["q3"].correct) == (5, 2)
    assert stats["q3"].discrimination == 0.5  # a right, b wrong; f wrong, g skipped
    assert stats["q3"].group_size == 2


def test_discrimination_groups_never_overlap_for_two_learners() -> None:
    upper, lower, size = quiz_stats.discrimination_groups({1: 5.0, 2: 1.0})
    assert (upper, lower, size) == ({1}, {2}, 1)
    assert quiz_stats.discrimination_groups({1: 5.0}) == (set(), set(), 0)


# --- Pages and CSV ------------------------------------------------------------------


def test_staff_see_every_figure_on_the_dashboard(client: Any, staff: User, graded: dict[str, Any]) -> None:
    client.force_login(staff)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    for text in [
        "Submissions per day",
        "linear-backward",
        "50%",
        "transposed",
        "Queue wait",
        "550 ms",
        "Time limit exceeded",
    ]:
        assert text in page, text
    incident = graded["made"][6]
    assert f'href="/submissions/{incident.pk}/"' in page or f"/{incident.pk}/" in page
    assert 'id="daily-data"' in page


def test_an_instructor_sees_the_dashboard_too(client: Any, instructor: User) -> None:
    client.force_login(instructor)
    assert client.get(reverse("dashboard")).status_code == 200


def test_the_dashboard_renders_with_no_data_at_all(client: Any, staff: User) -> None:
    client.force_login(staff)
    response = client.get(reverse("dashboard"), {"days": "all"})
    assert response.status_code == 200
    assert "No submissions in this period." in response.content.decode()


def _csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_each_table_exports_as_csv(client: Any, staff: User, graded: dict[str, Any], quiz_answers: Any) -> None:
    client.force_login(staff)
    for table in ["daily", "exercises", "diagnoses", "latency", "incidents", "quiz"]:
        response = client.get(reverse("dashboard_csv", args=[table]))
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
        assert len(_csv(response)) > 1, table
    exercises = _csv(client.get(reverse("dashboard_csv", args=["exercises"])))
    header, linear = exercises[0], exercises[1]
    assert dict(zip(header, linear, strict=True))["pass_rate_percent"] == "50.0"
    assert dict(zip(header, linear, strict=True))["median_attempts_to_first_accept"] == "3.0"
    latency = {row[0]: row for row in _csv(client.get(reverse("dashboard_csv", args=["latency"])))}
    assert latency["queue"][2:] == ["550.0", "955.0"]


def test_the_diagnoses_table_downloads_as_csv_and_an_unknown_table_is_404(
    client: Any, staff: User, graded: dict[str, Any]
) -> None:
    client.force_login(staff)
    response = client.get(reverse("dashboard_csv", args=["diagnoses"]))
    assert _csv(response)[1] == ["linear-backward", "dw", "transposed", "3", "100.0"]
    assert client.get(reverse("dashboard_csv", args=["nonsense"])).status_code == 404


def test_dashboard_queries_do_not_grow_with_submissions(
    client: Any, staff: User, graded: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client.force_login(staff)
    for _ in range(3):
        for made in graded["made"]:
            Submission.objects.create(user=made.user, exercise=made.exercise, code="x", verdict=made.verdict)
    with django_assert_max_num_queries(20):
        assert client.get(reverse("dashboard")).status_code == 200


def test_cached_figures_are_reused_until_a_recompute_is_asked_for(
    client: Any, staff: User, graded: dict[str, Any], settings: Any, django_assert_max_num_queries: Any
) -> None:
    from django.core.cache import cache

    settings.DASHBOARD_CACHE_S = 60
    cache.clear()
    client.force_login(staff)
    client.get(reverse("dashboard"))
    extra = graded["made"][0]
    Submission.objects.create(user=extra.user, exercise=extra.exercise, code="x", verdict="accepted")
    with django_assert_max_num_queries(6):  # session, user, groups?, in-flight, incidents: no aggregate
        page = client.get(reverse("dashboard")).content.decode()
    assert '<span class="stat-value">11</span><span class="stat-label">submissions' in page
    page = client.get(reverse("dashboard"), {"refresh": "1"}).content.decode()
    assert '<span class="stat-value">12</span><span class="stat-label">submissions' in page
    cache.clear()


# --- Live status -----------------------------------------------------------------------


def test_queue_depth_reads_the_redis_list_length(tmp_path: Path) -> None:
    import redis

    # The machine's Redis, or an embedded one when none answers.
    handle = ensure_redis("redis://127.0.0.1:6379/15", tmp_path)
    client = redis.Redis.from_url(handle.url)
    try:
        client.delete("dashboard-test-queue")
        client.rpush("dashboard-test-queue", "a", "b", "c")
        depth = live.queue_depth("dashboard-test-queue", url=handle.url)
        assert (depth.available, depth.depth) == (True, 3)
    finally:
        client.delete("dashboard-test-queue")
        handle.stop()


def test_queue_depth_says_unavailable_when_redis_is_down() -> None:
    depth = live.queue_depth("grading", url="redis://127.0.0.1:1/0")
    assert depth.available is False
    assert "unavailable" in depth.message


def test_the_live_panel_says_clearly_when_nothing_answers(client: Any, staff: User, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    client.force_login(staff)
    from unittest import mock

    with mock.patch.object(
        live,
        "live_workers",
        return_value=live.WorkerReport(
            available=True, message="No worker answered: submissions will wait in the queue."
        ),
    ):
        response = client.get(reverse("dashboard_live"), headers={"X-Requested-With": "fetch"})
    page = response.content.decode()
    assert "Unavailable" in page and "Redis is unavailable" in page
    assert "No worker answered" in page


def test_workers_get_the_isolation_of_their_latest_grading(graded: dict[str, Any]) -> None:
    latest = graded["made"][-1]
    Submission.objects.filter(pk=latest.pk).update(isolation="process", finished_at=timezone.now())
    workers = live.workers_with_isolation(["celery@box", "celery@idle"])
    assert [(worker.hostname, worker.isolation) for worker in workers] == [
        ("celery@box", "process"),
        ("celery@idle", ""),
    ]


# --- What makes the recompute fast ---------------------------------------------------


def _finished_through_the_service(user: User, exercise: Exercise, result: dict[str, Any]) -> Submission:
    from grader import services

    submission = Submission.objects.create(user=user, exercise=exercise, code="pass")
    claimed = services.submission_claim(submission.pk, worker="test:1")
    assert claimed is not None
    assert services.submission_finish(submission.pk, claim=claimed.claim_count, result=result)
    return submission


def test_storing_a_wrong_answer_copies_each_distinct_diagnosis_once(learner: User) -> None:
    exercise = _exercise("linear-backward", 1)
    diagnosis = [
        {"output": "dw", "mistake": "transposed", "title": "x"},
        {"output": "dw", "mistake": "transposed", "title": "again"},
        {"output": "db"},
        "not an object",
    ]
    wrong = _finished_through_the_service(learner, exercise, {"verdict": "wrong_answer", "diagnosis": diagnosis})
    right = _finished_through_the_service(learner, exercise, {"verdict": "accepted", "diagnosis": diagnosis})
    rows = SubmissionDiagnosis.objects.filter(submission=wrong).values_list("output", "mistake", "exercise_id")
    assert sorted(rows) == [
        ("", "unknown", exercise.pk),
        ("db", "unknown", exercise.pk),
        ("dw", "transposed", exercise.pk),
    ]
    assert SubmissionDiagnosis.objects.get(submission=wrong, output="dw").created_at == wrong.created_at
    assert not SubmissionDiagnosis.objects.filter(submission=right).exists()
    top = selectors.common_diagnoses(_window())
    assert [(row.output, row.mistake, row.submissions) for row in top] == [
        ("dw", "transposed", 1),  # ties: by mistake, then output
        ("", "unknown", 1),
        ("db", "unknown", 1),
    ]


def test_a_result_without_a_diagnosis_list_has_no_diagnosis_rows(learner: User) -> None:
    exercise = _exercise("linear-backward", 1)
    submission = _finished_through_the_service(learner, exercise, {"verdict": "wrong_answer", "diagnosis": "oops"})
    assert not SubmissionDiagnosis.objects.filter(submission=submission).exists()


def test_the_migration_backfills_diagnoses_of_stored_wrong_answers(graded: dict[str, Any]) -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("grader.migrations.0003_dashboard_indexes_and_diagnoses")
    before = sorted(
        SubmissionDiagnosis.objects.values_list("submission_id", "exercise_id", "created_at", "output", "mistake")
    )
    SubmissionDiagnosis.objects.all().delete()
    migration.backfill_diagnoses(apps, None)
    after = sorted(
        SubmissionDiagnosis.objects.values_list("submission_id", "exercise_id", "created_at", "output", "mistake")
    )
    assert after == before
    assert len(after) == 5  # three wrong answers: {dw, dx}, {dw}, {db, dw}


def test_an_all_time_window_counts_days_from_the_first_submission(graded: dict[str, Any]) -> None:
    days = selectors.submissions_per_day(aggregates.window_of(None))
    assert days[0].day == graded["day0"].date()
    assert [(row.submissions, row.accepted) for row in days] == [(6, 1), (5, 3), (0, 0)]


def test_totals_and_exercise_stats_agree_with_the_shared_counts(graded: dict[str, Any]) -> None:
    counts = selectors.window_counts(_window())
    assert counts.all_learners == 3
    assert counts.learners == {graded["linear"].pk: 3, graded["relu"].pk: 2}
    assert counts.solved == {graded["linear"].pk: 3, graded["relu"].pk: 0}
    assert counts.wrong_answers() == {graded["linear"].pk: 3}
    assert selectors.totals(_window(), counts) == selectors.totals(_window())


@pytest.mark.django_db(transaction=True)
def test_figures_computed_outside_a_transaction_match_those_computed_inside_one(graded: dict[str, Any]) -> None:
    """Outside a transaction PostgreSQL computes the latency on a second connection: same figures."""
    from django.db import connection, transaction

    assert not connection.in_atomic_block
    concurrent = figures.figures_compute(_window())
    with transaction.atomic():
        in_turn = figures.figures_compute(_window())
    assert concurrent.latency == in_turn.latency
    assert (concurrent.totals, concurrent.per_day, concurrent.diagnoses) == (
        in_turn.totals,
        in_turn.per_day,
        in_turn.diagnoses,
    )
    queue = {row.key: row for row in concurrent.latency}["queue"]
    assert (queue.count, queue.p50_s) == (10, pytest.approx(0.550, abs=1e-6))
