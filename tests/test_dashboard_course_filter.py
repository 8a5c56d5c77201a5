"""The dashboard's course filter: figures of one course's learners; staff pick only their own courses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import figures
from tests.conftest import PASSWORD
from tests.course_helpers import enroll, graded_submission, make_course, make_exercise

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_figure_cache(settings: Any) -> None:
    settings.DASHBOARD_CACHE_S = 0


@pytest.fixture
def two_courses(instructor: User, learner: User, other_learner: User) -> Any:
    course = make_course(instructor)
    enroll(course, learner)
    other = make_course(User.objects.create_user("owen", password=PASSWORD, is_staff=True), slug="other-course")
    enroll(other, other_learner)
    exercise = make_exercise()
    now = timezone.now()
    graded_submission(learner, exercise, at=now - timedelta(hours=1), score=1.0)
    graded_submission(other_learner, exercise, at=now - timedelta(hours=1), score=0.5)
    graded_submission(other_learner, exercise, at=now - timedelta(minutes=30), score=0.5)
    return course, other


def test_the_course_filter_counts_only_that_courses_learners(two_courses: Any) -> None:
    course, other = two_courses
    everyone = figures.figures_compute(figures.window_of(7))
    mine = figures.figures_compute(figures.window_of(7, course_id=course.pk))
    theirs = figures.figures_compute(figures.window_of(7, course_id=other.pk))
    assert everyone.totals.submissions == 3
    assert (mine.totals.submissions, mine.totals.learners) == (1, 1)
    assert (theirs.totals.submissions, theirs.totals.learners) == (2, 1)
    assert sum(day.submissions for day in theirs.per_day) == 2
    assert [stats.learners_solved for stats in mine.exercises if stats.submissions] == [1]
    assert [stats.learners_solved for stats in theirs.exercises if stats.submissions] == [0]


def test_an_instructor_picks_only_their_own_courses(instructor: User, two_courses: Any) -> None:
    course, other = two_courses
    client = Client()
    client.force_login(instructor)
    page = client.get(reverse("dashboard"), {"days": "7", "course": course.slug})
    assert page.status_code == 200
    text = page.content.decode()
    assert f'value="{course.slug}" selected' in text
    assert other.slug not in text
    assert client.get(reverse("dashboard"), {"course": other.slug}).status_code == 404
    csv_response = client.get(reverse("dashboard_csv", args=["exercises"]), {"course": other.slug})
    assert csv_response.status_code == 404
