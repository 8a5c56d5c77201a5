"""Exercise and submission pages (grader/views.py): rendering, submitting, bad input, access control.

Verdicts shown here come from the real engine (graded in this process); the wake-up
message is recorded instead of sent (Redis and the worker are in test_celery_integration.py).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from grader import selectors, services
from grader.models import Exercise, Submission
from lessons.models import Lesson
from tests.submission_helpers import exercise_from_folder, no_enqueue, solution, wrong  # noqa: F401 (an autouse fixture)


@pytest.fixture
def lesson(db: None) -> Lesson:
    return Lesson.objects.create(slug="backpropagation", title="Backpropagation Explained", question="How?")


@pytest.fixture
def exercise(lesson: Lesson) -> Exercise:
    return exercise_from_folder("linear-backward")


def as_user(user: User, **options: object) -> Client:
    client = Client(**options)  # type: ignore[arg-type]
    client.force_login(user)
    return client


def submit(user: User, code: str) -> Submission:
    """Create a submission and run what its commit would (the test's transaction never commits)."""
    submission = services.submission_create(user=user, exercise_slug="linear-backward", code=code)
    services.submission_enqueue(submission)
    return submission


def graded(user: User, code: str) -> Submission:
    submission = submit(user, code)
    assert services.submission_grade(submission.pk).graded
    submission.refresh_from_db()
    return submission


EXERCISE_URL = "/exercises/linear-backward/"


# --- Exercise page --------------------------------------------------------------------


def test_the_exercise_page_shows_the_statement_the_editor_with_the_starter_code_and_its_assets(
    client: Client, exercise: Exercise
) -> None:
    response = client.get(EXERCISE_URL)
    assertContains(response, "<h1>Backward pass of a linear layer</h1>", html=False)
    assertContains(response, 'class="math')  # the statement's formulas, rendered by KaTeX in the browser
    assertContains(response, "def linear_backward(dout, x, w, b):")
    assertContains(response, 'data-draft-key="linear-backward"')
    assertContains(response, "/static/vendor/codemirror.bundle.js")
    assertContains(response, "/static/js/exercise.js")
    assertContains(response, "/static/css/grader.css")
    assertContains(response, "Log in to submit")
    assertContains(response, 'href="/lessons/backpropagation/"')


def test_a_learner_sees_a_submit_button_and_their_latest_code_in_the_editor(learner: User, exercise: Exercise) -> None:
    submit(learner, "import numpy as np\n# my second try\n")
    response = as_user(learner).get(EXERCISE_URL)
    assertContains(response, "Submit for grading")
    assertContains(response, "# my second try")
    assertContains(response, "Attempt 1")


@pytest.mark.parametrize("slug", ["no-such-exercise", "retired"])
def test_an_unknown_or_retired_exercise_is_404(client: Client, exercise: Exercise, slug: str) -> None:
    Exercise.objects.create(
        slug="retired",
        title="Old",
        function_name="f",
        signature="f()",
        statement_md="",
        starter_code="",
        reference_solution="",
        is_active=False,
    )
    assert client.get(f"/exercises/{slug}/").status_code == 404


def test_submitting_the_form_stores_the_code_and_redirects_to_the_submission_page(
    learner: User, exercise: Exercise, no_enqueue: list[int], django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(learner).post(EXERCISE_URL, {"code": solution()})
    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/submissions/{submission.pk}/"
    assert submission.code == solution()
    assert submission.user == learner
    assert no_enqueue == [submission.pk]


def test_an_uploaded_file_is_submitted_like_the_text_field(learner: User, exercise: Exercise) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("mine.py", solution().encode(), content_type="text/x-python")
    response = as_user(learner).post(EXERCISE_URL, {"code": "ignored", "file": upload})
    assert response.status_code == 302
    assert Submission.objects.get().code == solution()


def test_a_guest_who_submits_is_sent_to_log_in_and_nothing_is_stored(client: Client, exercise: Exercise) -> None:
    response = client.post(EXERCISE_URL, {"code": solution()})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=" + EXERCISE_URL
    assert Submission.objects.count() == 0


def test_a_submission_without_the_csrf_token_is_refused(learner: User, exercise: Exercise) -> None:
    response = as_user(learner, enforce_csrf_checks=True).post(EXERCISE_URL, {"code": solution()})
    assert response.status_code == 403
    assert Submission.objects.count() == 0


def test_code_over_the_size_limit_is_refused_with_a_message_and_kept_in_the_editor(
    learner: User, exercise: Exercise
) -> None:
    code = "# big\n" + "x = 1\n" * 12_000
    response = as_user(learner).post(EXERCISE_URL, {"code": code})
    assertContains(response, "the limit is 64 KiB", status_code=413)
    assertContains(response, "# big", status_code=413)
    assert Submission.objects.count() == 0


def test_code_that_is_not_utf8_is_refused(learner: User, exercise: Exercise) -> None:
    client = as_user(learner)
    raw = client.post(EXERCISE_URL, "code=x%3D%27%FF%27", content_type="application/x-www-form-urlencoded")
    assertContains(raw, "not valid UTF-8", status_code=400)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("latin1.py", "x = 'café'\n".encode("latin-1"))
    uploaded = client.post(EXERCISE_URL, {"code": "", "file": upload})
    assertContains(uploaded, "not valid UTF-8", status_code=400)
    assert Submission.objects.count() == 0


def test_too_many_submissions_get_429_with_retry_after(learner: User, exercise: Exercise, settings) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = 2
    client = as_user(learner)
    for _ in range(2):
        assert client.post(EXERCISE_URL, {"code": solution()}).status_code == 302
    response = client.post(EXERCISE_URL, {"code": solution()})
    assertContains(response, "times per minute", status_code=429)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Submission.objects.count() == 2


# --- Submission page -------------------------------------------------------------------


def test_a_queued_submission_shows_its_position_and_polls_for_progress(learner: User, exercise: Exercise) -> None:
    submit(learner, solution())
    mine = submit(learner, solution())
    response = as_user(learner).get(f"/submissions/{mine.pk}/")
    assertContains(response, "position 2 in the queue")
    assertContains(response, f'hx-get="/submissions/{mine.pk}/progress/"')
    assertContains(response, 'hx-trigger="every 700ms"')
    assertContains(response, "/static/vendor/htmx/htmx.min.js")
    assertContains(response, '<meta http-equiv="refresh" content="2">')  # inside <noscript>
    partial = as_user(learner).get(f"/submissions/{mine.pk}/progress/")
    assertContains(partial, 'id="submission-live"')
    assertContains(partial, f'id="history-status-{mine.pk}" hx-swap-oob="true"')
    assertNotContains(partial, "<html")
    assert partial["Cache-Control"] == "no-store"


def test_the_progress_follows_the_stages_of_the_grading(learner: User, exercise: Exercise) -> None:
    submission = submit(learner, solution())
    services.submission_claim(submission.pk, worker="w:1")
    from grader.verdicts import Stage

    services.submission_record_stage(submission.pk, claim=1, stage=Stage.CHECKS)
    response = as_user(learner).get(f"/submissions/{submission.pk}/progress/")
    assertContains(response, "Checking your gradients")
    assertContains(response, 'class="stage stage-done" data-stage="sandbox"')
    assertContains(response, 'class="stage stage-current" data-stage="checks"')
    assertContains(response, 'class="stage stage-todo" data-stage="training"')
    assertContains(response, 'aria-valuenow="50"')


def test_a_submission_waiting_for_the_broker_says_it_will_be_graded_later(learner: User, exercise: Exercise) -> None:
    submission = submit(learner, solution())
    Submission.objects.filter(pk=submission.pk).update(enqueued_at=None)
    response = as_user(learner).get(f"/submissions/{submission.pk}/")
    assertContains(response, "will be graded when it is back")


@pytest.mark.sandbox
def test_an_accepted_submission_shows_the_checks_and_the_loss_chart_and_stops_polling(
    learner: User, exercise: Exercise
) -> None:
    submission = graded(learner, solution())
    response = as_user(learner).get(f"/submissions/{submission.pk}/")
    assertContains(response, 'data-verdict="accepted"')
    assertContains(response, "Accepted")
    assertContains(response, '<table class="checks-table">')
    # Every check under the name a learner reads (not the engine's internal name).
    for check in ("Your file loads", "against PyTorch autograd", "against finite differences", "Training run"):
        assertContains(response, check)
    assertNotContains(response, ">no_inplace<")
    assertContains(response, "<code>dw</code>")
    assertContains(response, 'id="loss-chart"')
    assertContains(response, 'id="loss-chart-data"')
    assertNotContains(response, "hx-get=")
    assertNotContains(response, 'http-equiv="refresh"')


@pytest.mark.sandbox
def test_a_wrong_submission_shows_the_diagnosis_with_hint_and_lesson_link_and_the_diff(
    learner: User, exercise: Exercise
) -> None:
    graded(learner, solution())
    submission = graded(learner, wrong("linear-backward", "dw_transposed"))
    response = as_user(learner).get(f"/submissions/{submission.pk}/")
    assertContains(response, "Wrong answer")
    assertContains(response, "dw looks transposed")
    assertContains(response, "Hint:")
    assertContains(response, 'href="/lessons/backpropagation/#')
    assertContains(response, "Changes since attempt 1")
    assertContains(response, 'class="diff-line diff-added"')
    assertContains(response, 'class="diff-line diff-removed"')
    assertContains(response, "Attempt 2")


UNEXPLAINED_MISTAKE = """
import numpy as np


def linear_backward(dout, x, w, b):
    print("dout has shape", dout.shape)
    dx = dout @ w.T
    dx[-1] = 0.0  # the last row forgotten
    return dx, x.T @ dout, dout.sum(axis=0)
"""


@pytest.mark.sandbox
def test_an_unexplained_mistake_shows_the_smallest_failing_case_and_what_the_code_printed(
    learner: User, exercise: Exercise
) -> None:
    submission = graded(learner, UNEXPLAINED_MISTAKE)
    response = as_user(learner).get(f"/submissions/{submission.pk}/")
    assertContains(response, "dx is wrong")
    assertContains(response, "the last of")
    assertContains(response, "The smallest failing case")
    assertContains(response, "your dx (* = differs)")
    assertContains(response, "What your code printed")
    assertContains(response, "dout has shape (")


def test_only_the_author_and_staff_can_see_a_submission(
    learner: User, other_learner: User, staff: User, exercise: Exercise
) -> None:
    submission = submit(learner, solution())
    for path in (f"/submissions/{submission.pk}/", f"/submissions/{submission.pk}/progress/"):
        assert as_user(learner).get(path).status_code == 200
        assert as_user(other_learner).get(path).status_code == 404
        assert as_user(staff).get(path).status_code == 200
        guest = Client().get(path)
        assert guest.status_code == 302 and guest["Location"].startswith("/accounts/login/")
    assert as_user(learner).get("/submissions/999999/").status_code == 404


def test_staff_see_whose_submission_it_is(learner: User, staff: User, exercise: Exercise) -> None:
    submission = submit(learner, solution())
    assertContains(as_user(staff).get(f"/submissions/{submission.pk}/"), "by <strong>ada</strong>", html=False)


# --- Lists and the lesson page include -------------------------------------------------------


def test_the_exercise_list_links_every_active_exercise_under_its_lesson(client: Client, exercise: Exercise) -> None:
    response = client.get(reverse("exercise_list"))
    assertContains(response, 'href="/exercises/linear-backward/"')
    assertContains(response, "Backpropagation Explained")


@pytest.mark.sandbox
def test_the_exercise_list_shows_each_exercise_as_the_learner_left_it(
    learner: User, exercise: Exercise, django_assert_max_num_queries
) -> None:
    def cards(client: Client) -> dict[str, str]:
        page = client.get(reverse("exercise_list")).content.decode()
        return {
            re.search(r'href="/exercises/([a-z0-9-]+)/"', card).group(1): card  # type: ignore[union-attr]
            for card in page.split("<article")[1:]
        }

    exercise_from_folder("mse-loss")
    graded(learner, wrong("linear-backward", "dw_transposed"))
    client = as_user(learner)
    with django_assert_max_num_queries(6):
        shown = cards(client)
    assert "Best " in shown["linear-backward"] and "Accepted" not in shown["linear-backward"]
    assert "1 submission<" in shown["linear-backward"]
    graded(learner, solution())
    shown = cards(client)
    assert "&#10003; Accepted" in shown["linear-backward"] and "2 submissions" in shown["linear-backward"]
    assert "Accepted" not in shown["mse-loss"] and "Best" not in shown["mse-loss"]  # not tried: no badge
    assert "Accepted" not in cards(Client())["linear-backward"]  # a guest sees no one's work


@pytest.mark.sandbox
def test_exercises_for_lesson_reports_attempts_best_score_and_acceptance_in_two_queries(
    learner: User, lesson: Lesson, exercise: Exercise, django_assert_num_queries
) -> None:
    exercise_from_folder("mse-loss")
    graded(learner, wrong("linear-backward", "dw_transposed"))
    graded(learner, solution())
    with django_assert_num_queries(2):
        cards = selectors.exercises_for_lesson(lesson, learner)
    by_slug = {card.exercise.slug: card for card in cards}
    assert by_slug["linear-backward"].attempts == 2
    assert by_slug["linear-backward"].accepted
    assert by_slug["linear-backward"].best_percent == 100
    assert by_slug["mse-loss"].attempts == 0
    html = render_to_string("grader/lesson_exercises.html", {"exercise_cards": cards})
    assert 'href="/exercises/linear-backward/"' in html
    assert "Accepted" in html


def test_the_diff_numbers_old_and_new_lines() -> None:
    lines = selectors.code_diff("a\nb\nc\n", "a\nB\nc\nd\n")
    kinds = [(line.kind, line.text, line.old_number, line.new_number) for line in lines]
    assert kinds[0][0] == "hunk"
    assert ("removed", "b", 2, None) in kinds
    assert ("added", "B", None, 2) in kinds
    assert ("added", "d", None, 4) in kinds
    assert ("context", "a", 1, 1) in kinds
    assert selectors.code_diff("same\n", "same\n") == []


def test_every_grader_template_renders(learner: User, exercise: Exercise, rf) -> None:
    submission = submit(learner, solution())
    request = rf.get("/")
    request.user = learner
    context = {
        "exercise": exercise,
        "submission": submission,
        "history": [submission],
        "steps": selectors.progress_steps(submission),
        "percent": 10,
        "queue_position": 1,
        "verdict": None,
        "chart": None,
        "groups": [],
        "exercise_cards": [selectors.ExerciseCard(exercise)],
        "code": "x = 1",
        "diff": [],
    }
    for name in (
        "grader/exercise_list.html",
        "grader/exercise_detail.html",
        "grader/submission_detail.html",
        "grader/_live.html",
        "grader/_history.html",
        "grader/lesson_exercises.html",
    ):
        assert render_to_string(name, context, request=request).strip()
