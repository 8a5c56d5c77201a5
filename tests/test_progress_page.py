"""The learner's progress page: lessons read, quiz scores, exercises with links to every submission."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from grader.models import Exercise, Submission
from lessons.models import Lesson, LessonRead
from lessons.progress import SUBMISSIONS_SHOWN_PER_EXERCISE, learner_progress
from quizzes.models import QuizAttempt, QuizQuestion

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(db: None) -> dict[str, Any]:
    backprop = Lesson.objects.create(slug="backpropagation", title="Backpropagation Explained", question="?", order=1)
    attention = Lesson.objects.create(slug="attention-mechanisms", title="Attention", question="?", order=2)
    questions = [
        QuizQuestion.objects.create(
            lesson=backprop, key=f"q{index}", order=index, kind="numeric", prompt_md="?", explanation_md="."
        )
        for index in range(4)
    ]
    linear = Exercise.objects.create(
        slug="linear-backward", title="Linear layer backward", lesson=backprop, order=1,
        function_name="linear_backward", signature="linear_backward(dout, x, w, b)", statement_md=".",
        starter_code="", reference_solution="",
    )  # fmt: skip
    relu = Exercise.objects.create(
        slug="relu-backward", title="ReLU backward", lesson=backprop, order=2, function_name="relu_backward",
        signature="relu_backward(dout, x)", statement_md=".", starter_code="", reference_solution="",
    )  # fmt: skip
    return {"backprop": backprop, "attention": attention, "questions": questions, "linear": linear, "relu": relu}


def _submit(user: User, exercise: Exercise, verdict: str) -> Submission:
    return Submission.objects.create(user=user, exercise=exercise, code="x", verdict=verdict, status="graded")


def test_the_page_shows_reads_quiz_scores_and_every_submission_with_a_link(
    client: Any, learner: User, other_learner: User, course: dict[str, Any]
) -> None:
    LessonRead.objects.create(user=learner, lesson=course["backprop"])
    q0, q1 = course["questions"][:2]
    QuizAttempt.objects.create(user=learner, question=q0, answer_text="1", score=1.0, is_correct=True)
    QuizAttempt.objects.create(user=learner, question=q1, answer_text="2", score=0.5, is_correct=False)
    wrong = _submit(learner, course["linear"], "wrong_answer")
    accepted = _submit(learner, course["linear"], "accepted")
    theirs = _submit(other_learner, course["relu"], "accepted")

    client.force_login(learner)
    response = client.get(reverse("progress"))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="stat-value">1/2</span><span class="stat-label">lessons read' in page
    assert "1.5/4" in page  # best scores 1 + 0.5 out of four questions
    assert '<span class="stat-value">1/2</span><span class="stat-label">exercises accepted' in page
    for submission in (wrong, accepted):
        assert f'href="{reverse("submission_detail", args=[submission.pk])}"' in page
    assert f'href="{reverse("submission_detail", args=[theirs.pk])}"' not in page
    assert "first accepted" in page
    assert "not attempted" in page  # relu-backward, for this learner


def test_a_guest_is_sent_to_log_in(client: Any) -> None:
    response = client.get(reverse("progress"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_only_the_latest_submissions_are_listed_with_a_count_of_the_rest(learner: User, course: dict[str, Any]) -> None:
    for _ in range(SUBMISSIONS_SHOWN_PER_EXERCISE + 3):
        _submit(learner, course["linear"], "wrong_answer")
    first_ok = _submit(learner, course["linear"], "accepted")
    _submit(learner, course["linear"], "accepted")
    linear = next(row for row in learner_progress(learner).exercises if row.exercise.slug == "linear-backward")
    assert linear.attempts == SUBMISSIONS_SHOWN_PER_EXERCISE + 5
    assert len(linear.shown) == SUBMISSIONS_SHOWN_PER_EXERCISE
    assert linear.hidden == 5
    assert linear.first_accepted is not None and linear.first_accepted.id == first_ok.pk


def test_the_progress_page_takes_a_fixed_number_of_queries(
    client: Any, learner: User, course: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    for question in course["questions"]:
        QuizAttempt.objects.create(user=learner, question=question, answer_text="1", score=1.0, is_correct=True)
    for exercise in (course["linear"], course["relu"]):
        for verdict in ("wrong_answer", "accepted") * 10:
            _submit(learner, exercise, verdict)
    LessonRead.objects.create(user=learner, lesson=course["attention"])
    client.force_login(learner)
    with django_assert_max_num_queries(9):
        assert client.get(reverse("progress")).status_code == 200
