"""A parameterized question whose generator is gone or fails: the quiz page says so, nothing breaks.

A generator can vanish from the code (renamed in an upgrade) while questions in the database
still name it, or an author's generator can raise for some seeds. The page must still render
every other question, the broken one must say plainly that it cannot be shown, and an answer
to it must be refused with a clear message, storing nothing.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from pytest_django.asserts import assertContains

from quizzes import parameterized
from quizzes.models import QuizAttempt
from tests.test_quiz_views import FETCH, as_user, correct_key, parameterized_form, question, quizzes, url  # noqa: F401

pytestmark = pytest.mark.django_db


def _fails(rng: object) -> parameterized.Variant:
    raise ZeroDivisionError("the author's generator divides by zero for these numbers")


BROKEN = {
    "renamed": lambda q, monkeypatch: type(q).objects.filter(pk=q.pk).update(generator="no_longer_exists"),
    "raising": lambda q, monkeypatch: monkeypatch.setitem(parameterized.GENERATORS, q.generator, _fails),
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_broken_generator_leaves_the_rest_of_the_quiz_working(
    learner: User, url: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = question("scalar-network-dw2")
    BROKEN[how](broken, monkeypatch)
    client = as_user(learner)

    page = client.get(url)
    assert page.status_code == 200
    assertContains(page, 'data-testid="question-unavailable"', count=1)
    assertContains(page, "This question cannot be shown right now")
    assertContains(page, "Check answer")  # the other questions keep their forms

    refused = client.post(url, parameterized_form(learner, broken, 0, "1 2; 3 4; 5 6"), **FETCH)
    assert refused.status_code == 400
    assert "cannot be answered right now" in refused.json()["error"]
    assert not QuizAttempt.objects.filter(question=broken).exists()

    other = question("two-paths-sum")
    assert client.post(url, {"question": other.key, "choice": correct_key(other)}).status_code == 302
    assert QuizAttempt.objects.filter(question=other, is_correct=True).count() == 1
