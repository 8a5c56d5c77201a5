"""The home page, the lesson pages and the account pages, with the real lessons imported."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from contentsync.files import ContentReport
from lessons.content import load_lessons
from lessons.models import Lesson, LessonRead

pytestmark = pytest.mark.django_db

SLUGS = ("backpropagation", "attention-mechanisms", "cnn-architecture", "activation-functions", "batch-normalization")


@pytest.fixture
def lessons(db: None) -> list[Lesson]:
    report = ContentReport(root=settings.CONTENT_DIR)
    load_lessons(settings.CONTENT_DIR, report, write=True)
    assert report.errors == []
    return list(Lesson.objects.all())


def test_the_home_page_shows_a_card_per_lesson_with_its_difficulty(client: Client, lessons: list[Lesson]) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for lesson in lessons:
        assert lesson.get_absolute_url() in html
        assert lesson.title in html
    assert "HARD" in html.upper()
    assert "lessons read" not in html  # a guest has no progress strip


def test_the_home_page_shows_a_learners_progress_once_there_is_some(
    client: Client, learner: User, lessons: list[Lesson]
) -> None:
    client.force_login(learner)
    assert "0/5" in client.get("/").content.decode()
    first = client.get("/lessons/backpropagation/").content.decode()
    assert LessonRead.objects.filter(user=learner, lesson__slug="backpropagation").count() == 1
    assert "badge-done" not in first  # not "Read" while it is being read for the first time
    again = client.get("/lessons/backpropagation/").content.decode()
    assert LessonRead.objects.filter(user=learner).count() == 1
    assert "&#10003; Read" in again or "✓ Read" in again
    assert "1/5" in client.get("/").content.decode()


def test_the_home_page_query_count_does_not_grow_with_lessons(
    client: Client, learner: User, lessons: list[Lesson], django_assert_max_num_queries
) -> None:
    client.force_login(learner)
    with django_assert_max_num_queries(12):
        assert client.get("/").status_code == 200


@pytest.mark.parametrize("slug", SLUGS)
def test_every_lesson_page_renders_its_question_answer_math_code_and_diagram(
    client: Client, lessons: list[Lesson], slug: str
) -> None:
    html = client.get(f"/lessons/{slug}/").content.decode()
    lesson = Lesson.objects.get(slug=slug)
    assert lesson.question in html
    assert "Short answer" in html
    assert 'class="math' in html  # KaTeX renders these spans in the browser
    assert 'class="highlight' in html  # Pygments ran at import
    assert 'class="mermaid' in html
    assert 'id="practice"' in html
    assert "<!-- check" not in html


def test_the_backpropagation_lesson_restores_the_chain_rule_formula(client: Client, lessons: list[Lesson]) -> None:
    lesson = Lesson.objects.get(slug="backpropagation")
    assert "\\frac{\\partial L}{\\partial w}" in lesson.body_md + lesson.short_answer_md
    assert "SGD" in lesson.body_md


def test_an_unknown_lesson_is_a_404(client: Client, lessons: list[Lesson]) -> None:
    assert client.get("/lessons/no-such-lesson/").status_code == 404


def test_a_guest_opening_a_lesson_records_nothing(client: Client, lessons: list[Lesson]) -> None:
    assert client.get("/lessons/backpropagation/").status_code == 200
    assert LessonRead.objects.count() == 0


def test_sign_up_logs_the_new_learner_in_and_log_out_needs_a_post(client: Client, lessons: list[Lesson]) -> None:
    response = client.post(
        reverse("signup"),
        {"username": "newcomer", "password1": "a-long-Passphrase-2026", "password2": "a-long-Passphrase-2026"},
    )
    assert response.status_code == 302
    assert client.get("/").context["user"].username == "newcomer"
    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert not client.get("/").context["user"].is_authenticated


def test_log_in_refuses_a_wrong_password_with_a_message(client: Client, learner: User) -> None:
    response = client.post(reverse("login"), {"username": learner.username, "password": "wrong"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_the_instructor_group_may_edit_content_but_not_users(instructor: User) -> None:
    assert instructor.has_perm("lessons.change_lesson")
    assert instructor.has_perm("grader.change_exercise")
    assert not instructor.has_perm("auth.change_user")


def test_a_lesson_links_each_of_its_exercises(client: Client, lessons: list[Lesson]) -> None:
    from grader.content import load_exercises

    report = ContentReport(root=settings.CONTENT_DIR)
    load_exercises(settings.CONTENT_DIR, report, write=True)
    assert report.errors == []
    from grader.models import Exercise

    exercises = list(Exercise.objects.select_related("lesson"))
    assert len(exercises) == 12
    for exercise in exercises:
        assert exercise.lesson is not None, exercise.slug
        html = client.get(exercise.lesson.get_absolute_url()).content.decode()
        assert f'href="/exercises/{exercise.slug}/"' in html
