"""Who reaches what: learners, instructors (content only) and staff (everything)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from grader.models import Exercise, Submission
from lessons.models import Lesson

pytestmark = pytest.mark.django_db

DASHBOARD_URLS = ["/dashboard/", "/dashboard/exercises.csv", "/dashboard/live/", "/dashboard/daily.csv"]
CONTENT_ADMIN_PAGES = [
    "admin:grader_exercise_changelist",
    "admin:grader_exercise_add",
    "admin:lessons_lesson_changelist",
    "admin:lessons_lesson_add",
    "admin:quizzes_quizquestion_changelist",
    "admin:quizzes_quizquestion_add",
]
USER_ADMIN_PAGES = ["admin:auth_user_changelist", "admin:auth_user_add", "admin:auth_group_changelist"]


@pytest.fixture
def exercise(db: None) -> Exercise:
    return Exercise.objects.create(
        slug="relu-backward", title="ReLU", function_name="relu_backward", signature="relu_backward(dout, x)",
        statement_md="x", starter_code="", reference_solution="",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _no_figure_cache(settings: Any) -> None:
    settings.DASHBOARD_CACHE_S = 0


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_a_guest_is_sent_to_log_in_for_the_dashboard(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_a_learner_cannot_reach_the_dashboard(client: Any, learner: User, url: str) -> None:
    client.force_login(learner)
    assert client.get(url).status_code == 403


def test_a_learner_cannot_reach_the_admin(client: Any, learner: User) -> None:
    client.force_login(learner)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert client.get(reverse("admin:grader_exercise_changelist")).status_code == 302


def test_a_learner_cannot_open_another_learners_submission(
    client: Any, learner: User, other_learner: User, exercise: Exercise
) -> None:
    theirs = Submission.objects.create(user=other_learner, exercise=exercise, code="secret = 1")
    mine = Submission.objects.create(user=learner, exercise=exercise, code="mine = 1")
    client.force_login(learner)
    assert client.get(reverse("submission_detail", args=[mine.pk])).status_code == 200
    response = client.get(reverse("submission_detail", args=[theirs.pk]))
    assert response.status_code in {403, 404}
    assert b"secret = 1" not in response.content


@pytest.mark.parametrize("url", DASHBOARD_URLS[:3])
def test_an_instructor_reaches_the_dashboard(client: Any, instructor: User, url: str) -> None:
    client.force_login(instructor)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("name", CONTENT_ADMIN_PAGES)
def test_an_instructor_edits_content_in_the_admin(client: Any, instructor: User, name: str) -> None:
    client.force_login(instructor)
    assert client.get(reverse(name)).status_code == 200


def test_an_instructor_can_change_a_lesson(client: Any, instructor: User) -> None:
    lesson = Lesson.objects.create(slug="backpropagation", title="Backprop", question="Why?")
    client.force_login(instructor)
    assert client.get(reverse("admin:lessons_lesson_change", args=[lesson.pk])).status_code == 200


@pytest.mark.parametrize("name", USER_ADMIN_PAGES)
def test_an_instructor_cannot_see_or_edit_users(client: Any, instructor: User, name: str) -> None:
    client.force_login(instructor)
    assert client.get(reverse(name)).status_code == 403


def test_an_instructor_cannot_change_a_user(client: Any, instructor: User, learner: User) -> None:
    client.force_login(instructor)
    url = reverse("admin:auth_user_change", args=[learner.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"username": "ada", "is_staff": "on", "is_superuser": "on"})
    assert response.status_code == 403
    learner.refresh_from_db()
    assert not learner.is_staff and not learner.is_superuser


def test_an_instructor_cannot_read_learners_submissions_in_the_admin(client: Any, instructor: User) -> None:
    client.force_login(instructor)
    assert client.get(reverse("admin:grader_submission_changelist")).status_code == 403


@pytest.mark.parametrize("name", CONTENT_ADMIN_PAGES + USER_ADMIN_PAGES + ["admin:grader_submission_changelist"])
def test_staff_see_everything(client: Any, staff: User, name: str) -> None:
    client.force_login(staff)
    assert client.get(reverse(name)).status_code == 200


def test_the_submission_admin_list_has_a_bounded_query_count(
    client: Any, staff: User, learner: User, exercise: Exercise, django_assert_max_num_queries: Any
) -> None:
    Submission.objects.bulk_create([Submission(user=learner, exercise=exercise, code="x") for _ in range(60)])
    client.force_login(staff)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:grader_submission_changelist")).status_code == 200


def test_an_instructor_may_remove_a_known_wrong_variant_but_not_delete_exercises(instructor: User) -> None:
    assert instructor.has_perm("grader.delete_knownwrongvariant")
    assert instructor.has_perm("grader.change_exercise") and instructor.has_perm("quizzes.change_quizquestion")
    assert not instructor.has_perm("grader.delete_exercise")
    assert not instructor.has_perm("auth.change_user") and not instructor.has_perm("auth.view_user")
    assert not instructor.has_perm("grader.view_submission")


def test_an_instructor_deleting_a_question_is_told_why_not_and_what_to_do(
    client: Any, instructor: User, learner: User, staff: User
) -> None:
    from quizzes.models import QuizAttempt, QuizQuestion

    lesson = Lesson.objects.create(slug="l", title="L", body_md="x")
    question = QuizQuestion.objects.create(
        lesson=lesson, key="q1", kind="numeric", prompt_md="?", explanation_md=".", answer=1
    )
    QuizAttempt.objects.create(user=learner, question=question, answer_text="2", score=0, is_correct=False)
    delete_url = reverse("admin:quizzes_quizquestion_delete", args=[question.pk])
    client.force_login(instructor)
    response = client.post(delete_url, {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:quizzes_quizquestion_change", args=[question.pk])
    text = response.content.decode()
    assert "You cannot delete “q1”" in text and "(1 so far)" in text and "untick “Is active”" in text
    assert QuizQuestion.objects.filter(pk=question.pk).exists() and QuizAttempt.objects.count() == 1
    client.force_login(staff)  # who may delete still gets Django's confirmation page
    assert "Are you sure" in client.get(delete_url).content.decode()
