"""The course filter applies to the quiz item analysis and the sandbox incidents too, on the page and in
their CSV; the staff of one course can never reach another course's figures through the filter."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import figures, selectors
from dashboard.quiz_stats import quiz_question_stats
from gradlab.apps import INSTRUCTOR_GROUP
from lessons.models import Lesson
from quizzes.models import QuizAttempt, QuizQuestion
from tests.conftest import PASSWORD
from tests.course_helpers import enroll, graded_submission, make_course, make_exercise, make_ta

pytestmark = pytest.mark.django_db

TABLES = ["daily", "exercises", "diagnoses", "latency", "incidents", "quiz"]


@pytest.fixture(autouse=True)
def _no_figure_cache(settings: Any) -> None:
    settings.DASHBOARD_CACHE_S = 0


@pytest.fixture
def courses(instructor: User, learner: User, other_learner: User) -> dict[str, Any]:
    """Course A (ada) and course B (grace); a teaching assistant of A who may open the dashboard."""
    course_a = make_course(instructor, slug="course-a")
    course_b = make_course(User.objects.create_user("owen", password=PASSWORD, is_staff=True), slug="course-b")
    enroll(course_a, learner)
    enroll(course_b, other_learner)
    ta = User.objects.create_user("tara", password=PASSWORD, is_staff=True)
    ta.groups.add(Group.objects.get_or_create(name=INSTRUCTOR_GROUP)[0])
    make_ta(course_a, ta)
    lesson = Lesson.objects.create(slug="backprop", title="Backprop", question="Why?")
    question = QuizQuestion.objects.create(
        lesson=lesson, key="chain-rule", kind="numeric", prompt_md="d/dx of x**2 at 3?", explanation_md=".", answer=6
    )
    QuizAttempt.objects.create(user=learner, question=question, answer_text="6", score=1.0, is_correct=True)
    QuizAttempt.objects.create(user=other_learner, question=question, answer_text="5", score=0.0, is_correct=False)
    exercise = make_exercise()
    now = timezone.now()
    ada_incident = graded_submission(learner, exercise, at=now - timedelta(hours=2), score=0.0, verdict="forbidden")
    grace_incident = graded_submission(
        other_learner, exercise, at=now - timedelta(hours=1), score=0.0, verdict="time_limit_exceeded"
    )
    return {"a": course_a, "b": course_b, "ta": ta, "ada": ada_incident, "grace": grace_incident}


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_quiz_item_analysis_and_incidents_count_only_the_chosen_courses_learners(courses: dict[str, Any]) -> None:
    def quiz_row(course_id: int | None) -> tuple[int, int]:
        [row] = quiz_question_stats(course_id=course_id)
        return row.learners, row.correct

    assert quiz_row(None) == (2, 1)
    assert quiz_row(courses["a"].pk) == (1, 1)
    assert quiz_row(courses["b"].pk) == (1, 0)
    assert [s.pk for s in selectors.sandbox_incidents()] == [courses["grace"].pk, courses["ada"].pk]
    assert [s.pk for s in selectors.sandbox_incidents(course_id=courses["a"].pk)] == [courses["ada"].pk]
    assert [s.pk for s in selectors.sandbox_incidents(course_id=courses["b"].pk)] == [courses["grace"].pk]
    # The cached figures (what the page shows) use the same filter.
    mine = figures.figures_compute(figures.window_of(7, course_id=courses["a"].pk))
    assert [(row.learners, row.correct) for row in mine.quiz] == [(1, 1)]


def test_the_page_and_the_csv_of_quiz_and_incidents_follow_the_course_filter(courses: dict[str, Any]) -> None:
    client = Client()
    client.force_login(courses["ta"])
    page = client.get(reverse("dashboard"), {"days": "7", "course": "course-a"})
    assert page.status_code == 200
    text = page.content.decode()
    assert f'href="/submissions/{courses["ada"].pk}/"' in text
    assert f"/submissions/{courses['grace'].pk}/" not in text and "grace" not in text
    for table in ("incidents", "quiz"):
        assert f"{reverse('dashboard_csv', args=[table])}?days=7&amp;course=course-a" in text, table
    incidents = _csv(client.get(reverse("dashboard_csv", args=["incidents"]), {"days": "7", "course": "course-a"}))
    assert [(row["submission"], row["learner"]) for row in incidents] == [(str(courses["ada"].pk), "ada")]
    quiz = _csv(client.get(reverse("dashboard_csv", args=["quiz"]), {"course": "course-a"}))
    assert [(row["question"], row["learners"], row["percent_correct"]) for row in quiz] == [
        ("chain-rule", "1", "100.0")
    ]


@pytest.mark.parametrize("value", ["course-b", "COURSE-B", " course-b", "course-b/", "{b_pk}", "course-b&course=a"])
def test_the_staff_of_another_course_cannot_reach_course_b_through_any_filter_value(
    courses: dict[str, Any], value: str
) -> None:
    client = Client()
    client.force_login(courses["ta"])
    value = value.replace("{b_pk}", str(courses["b"].pk))
    assert client.get(reverse("dashboard"), {"course": value}).status_code == 404
    for table in TABLES:
        response = client.get(reverse("dashboard_csv", args=[table]), {"days": "all", "course": value})
        assert response.status_code == 404, table
        assert b"grace" not in response.content
    # Only their own course is offered.
    offered = client.get(reverse("dashboard")).content.decode()
    assert 'value="course-a"' in offered and "course-b" not in offered


def test_a_superuser_may_filter_on_any_course(staff: User, courses: dict[str, Any]) -> None:
    client = Client()
    client.force_login(staff)
    incidents = _csv(client.get(reverse("dashboard_csv", args=["incidents"]), {"days": "7", "course": "course-b"}))
    assert [row["learner"] for row in incidents] == ["grace"]
    quiz = _csv(client.get(reverse("dashboard_csv", args=["quiz"]), {"course": "course-b"}))
    assert [(row["learners"], row["percent_correct"]) for row in quiz] == [("1", "0.0")]
