"""The hints a learner revealed, on their submission's page: for the learner, a superuser and the staff of
the learner's course (grader.selectors.can_see_hint_reveals); never for the staff of another course."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from courses.models import Course
from grader.auth import api_token_create
from grader.models import Exercise, HintReveal, Submission
from tests.conftest import PASSWORD
from tests.course_helpers import enroll, make_assignment, make_course, make_exercise, make_ta
from tests.submission_helpers import exercise_from_folder

pytestmark = pytest.mark.django_db

HINTS_SECTION = 'id="hint-reveals"'


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def revealed(learner: User, exercise: Exercise, level: int, at: Any) -> None:
    reveal = HintReveal.objects.create(user=learner, exercise=exercise, level=level)
    HintReveal.objects.filter(pk=reveal.pk).update(revealed_at=at)


def submitted(learner: User, exercise: Exercise, at: Any) -> Submission:
    previous = Submission.objects.filter(user=learner, exercise=exercise).count()
    submission = Submission.objects.create(user=learner, exercise=exercise, code="x = 1\n", attempt=previous + 1)
    Submission.objects.filter(pk=submission.pk).update(created_at=at)
    submission.refresh_from_db()
    return submission


@pytest.fixture
def setting(instructor: User, learner: User) -> dict[str, Any]:
    """ada in course A (whose assignment has linear-backward), with a TA who is not site staff; course B
    with a TA of its own; ada revealed hint 1 before her attempt and hint 2 after it."""
    exercise = exercise_from_folder("linear-backward")
    assert len(exercise.hints) == 3
    course_a = make_course(instructor, slug="course-a")
    make_assignment(course_a, [exercise])
    enroll(course_a, learner)
    ta_a = User.objects.create_user("tara", password=PASSWORD)
    make_ta(course_a, ta_a)
    course_b = make_course(User.objects.create_user("owen", password=PASSWORD), slug="course-b")
    make_assignment(course_b, [exercise])
    ta_b = User.objects.create_user("tom", password=PASSWORD)
    make_ta(course_b, ta_b)
    now = timezone.now()
    revealed(learner, exercise, 1, now - timedelta(hours=2))
    revealed(learner, exercise, 2, now - timedelta(hours=1))
    submission = submitted(learner, exercise, now - timedelta(minutes=90))
    return {"exercise": exercise, "a": course_a, "b": course_b, "ta_a": ta_a, "ta_b": ta_b, "submission": submission}


def hint_items(page: str) -> list[str]:
    """The <li> of each listed reveal, in order."""
    return [chunk.split("</li>")[0] for chunk in page.split('<li class="revealed-hint')[1:]]


def test_the_learners_course_staff_see_each_revealed_hint_its_time_and_whether_it_came_before_the_attempt(
    setting: dict[str, Any],
) -> None:
    submission = setting["submission"]
    response = as_user(setting["ta_a"]).get(f"/submissions/{submission.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assertContains(response, "Hints revealed by ada")
    assertContains(response, "1 of its 3 hints revealed before this attempt was submitted.")
    first, second = hint_items(page)
    assert ' is-before" data-level="1"' in first and "Hint 1: The idea" in first
    assert "<strong>before this attempt</strong>" in first
    assert '" data-level="2"' in second and "is-before" not in second and "after this attempt" in second
    for level, item in ((1, first), (2, second)):
        moment = HintReveal.objects.get(level=level).revealed_at
        assert f'datetime="{moment.isoformat()}"' in item
    assert "Hint 3" not in page  # never revealed


def test_the_learner_sees_their_own_reveals_and_a_superuser_sees_them_too(
    setting: dict[str, Any], learner: User, staff: User
) -> None:
    path = f"/submissions/{setting['submission'].pk}/"
    own = as_user(learner).get(path)
    assertContains(own, "Hints you revealed")
    assert len(hint_items(own.content.decode())) == 2
    assertContains(as_user(staff).get(path), "Hints revealed by ada")


def test_a_teaching_assistant_of_another_course_sees_neither_the_page_nor_the_reveals(
    setting: dict[str, Any],
) -> None:
    submission = setting["submission"]
    ta_b = setting["ta_b"]
    for path in (f"/submissions/{submission.pk}/", f"/submissions/{submission.pk}/progress/"):
        assert as_user(ta_b).get(path).status_code == 404
    # Site staff (as a TA may be, to open the dashboard) open the page but not the learner's hints.
    ta_b.is_staff = True
    ta_b.save()
    response = as_user(ta_b).get(f"/submissions/{submission.pk}/")
    assert response.status_code == 200
    assertNotContains(response, HINTS_SECTION)
    assertNotContains(response, "Hint 1: The idea")


def test_course_staff_see_only_their_enrolled_learners_work_on_their_courses_exercises(
    setting: dict[str, Any], learner: User, other_learner: User
) -> None:
    ta_a = setting["ta_a"]
    # grace is in course B only: course A's TA gets 404, course B's TA sees her attempt and its hints.
    enroll(setting["b"], other_learner)
    theirs = submitted(other_learner, setting["exercise"], timezone.now())
    assert as_user(ta_a).get(f"/submissions/{theirs.pk}/").status_code == 404
    assertContains(as_user(setting["ta_b"]).get(f"/submissions/{theirs.pk}/"), "Hints revealed by grace")
    # ada's work on an exercise that is in none of course A's assignments stays hers.
    elsewhere = submitted(learner, make_exercise("mse-loss"), timezone.now())
    assert as_user(ta_a).get(f"/submissions/{elsewhere.pk}/").status_code == 404
    # The API follows the same rule.
    for ta, status in ((ta_a, 200), (setting["ta_b"], 404)):
        _, token = api_token_create(ta)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert api.get(f"/api/submissions/{setting['submission'].pk}").status_code == status


def test_a_submission_before_any_reveal_counts_none_and_an_exercise_without_hints_says_so(
    setting: dict[str, Any], learner: User, instructor: User
) -> None:
    early = submitted(learner, setting["exercise"], timezone.now() - timedelta(hours=3))
    response = as_user(setting["ta_a"]).get(f"/submissions/{early.pk}/")
    assertContains(response, "0 of its 3 hints revealed before this attempt was submitted.")
    assert "is-before" not in "".join(hint_items(response.content.decode()))
    bare = make_exercise("no-hints")
    make_assignment(Course.objects.get(slug="course-a"), [bare])
    plain = submitted(learner, bare, timezone.now())
    assertContains(as_user(setting["ta_a"]).get(f"/submissions/{plain.pk}/"), "This exercise has no hints.")
    # Hints exist but none revealed.
    other = User.objects.create_user("hedy", password=PASSWORD)
    enroll(setting["a"], other)
    untouched = submitted(other, setting["exercise"], timezone.now())
    assertContains(as_user(other).get(f"/submissions/{untouched.pk}/"), "You have revealed none of its 3 hints.")
    assertContains(
        as_user(setting["ta_a"]).get(f"/submissions/{untouched.pk}/"), "hedy has revealed none of its 3 hints."
    )
