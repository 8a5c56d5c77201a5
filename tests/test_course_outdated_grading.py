"""When an exercise's grading changes, course staff are told which past submissions it may affect.

The grading digest covers the spec, the reference and the known-wrong variants (not the
statement); it moves through the admin's save and through `import_content`. An assignment's
page then tells its staff how many graded submissions predate the change, until an applied
regrade has graded them again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from courses import regrades, selectors
from grader.grading_version import exercise_grading_touch
from grader.models import Exercise, KnownWrongVariant, Submission
from grader.tasks import validate_exercise
from tests.course_helpers import enroll, graded_submission, make_assignment, make_course, make_exercise, make_ta
from tests.test_admin_authoring import change_form_data
from tests.test_exercise_content import content_copy, import_content

pytestmark = pytest.mark.django_db


def test_the_digest_follows_what_decides_a_verdict_and_nothing_else(db: None) -> None:
    exercise = make_exercise()
    assert exercise_grading_touch(exercise) is False  # the first digest is a start, not a change
    assert exercise.grading_changed_at is None and len(exercise.grading_digest) == 64

    exercise.statement_md, exercise.title = "Reworded.", "Renamed"
    exercise.save()
    assert exercise_grading_touch(exercise) is False

    changes = {
        "spec": lambda: exercise.spec.update({"tolerance": {"rtol": 1e-3}}),
        "reference": lambda: setattr(exercise, "reference_solution", "def f(x):\n    return 1 * x\n"),
        "variant": lambda: KnownWrongVariant.objects.create(
            exercise=exercise, name="zero", mistake="zero", code="def f(x):\n    return 0\n"
        ),
    }
    for what, change in changes.items():
        before = exercise.grading_digest
        change()
        exercise.save()
        assert exercise_grading_touch(exercise) is True, what
        assert exercise.grading_digest != before and exercise.grading_changed_at is not None
        assert Exercise.objects.get(pk=exercise.pk).grading_digest == exercise.grading_digest
        assert exercise_grading_touch(exercise) is False, f"{what}: touching twice is one change"


@pytest.fixture
def course_setup(instructor: User, learner: User, other_learner: User, django_capture_on_commit_callbacks: Any) -> Any:
    course = make_course(instructor)
    enroll(course, learner, other_learner)
    exercise = make_exercise()
    exercise_grading_touch(exercise)
    assignment = make_assignment(course, [exercise])
    with django_capture_on_commit_callbacks(execute=True):
        for who, hours in ((learner, 3), (learner, 2), (other_learner, 1)):
            graded_submission(who, exercise, at=timezone.now() - timedelta(hours=hours), score=0.5)
    return course, exercise, assignment


def _page(client: Any, user: User, assignment: Any) -> str:
    client.force_login(user)
    response = client.get(assignment.get_absolute_url())
    assert response.status_code == 200
    return str(response.content.decode())


def test_staff_see_how_many_graded_submissions_predate_a_change(
    client: Any, instructor: User, learner: User, course_setup: Any, django_user_model: Any
) -> None:
    course, exercise, assignment = course_setup
    assert selectors.outdated_items(assignment) == []
    assert 'data-testid="outdated-grading"' not in _page(client, instructor, assignment)

    exercise.reference_solution = "def f(x):\n    return x + 0\n"
    exercise.save()
    assert exercise_grading_touch(exercise)

    [row] = selectors.outdated_items(assignment)
    assert (row.item.exercise_id, row.submissions, row.learners) == (exercise.pk, 3, 2)
    page = _page(client, instructor, assignment)
    assert 'data-testid="outdated-grading"' in page
    assert "after 3 submissions by 2 learners had been graded" in page
    assert "Preview a regrade below" in page

    ta = django_user_model.objects.create_user("tia")
    make_ta(course, ta)
    page = _page(client, ta, assignment)
    assert "after 3 submissions by 2 learners" in page and "An instructor can regrade them" in page
    assert 'data-testid="outdated-grading"' not in _page(client, learner, assignment)


def test_an_applied_regrade_or_a_later_grading_clears_the_notice(
    instructor: User, learner: User, course_setup: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    _, exercise, assignment = course_setup
    exercise.spec = {**exercise.spec, "changed": True}
    exercise.save()
    exercise_grading_touch(exercise)

    # A dry run is only a preview: the submissions still carry their old verdicts.
    monkeypatch.setattr(regrades, "regrade_enqueue", len)
    preview = regrades.regrade_start(assignment, by=instructor, dry_run=True)
    _finish(preview, django_capture_on_commit_callbacks)
    assert selectors.outdated_items(assignment)[0].submissions == 3

    applied = regrades.regrade_start(assignment, by=instructor, dry_run=False)
    _finish(applied, django_capture_on_commit_callbacks)
    assert selectors.outdated_items(assignment) == []

    # A new submission graded after the change is current; only a second change dates it again.
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=timezone.now(), score=1.0)
    assert selectors.outdated_items(assignment) == []
    exercise.reference_solution += "# again\n"
    exercise.save()
    exercise_grading_touch(exercise)
    assert selectors.outdated_items(assignment)[0].submissions == 4


def _finish(job: Any, captured: Any) -> None:
    def grade(submission: Submission) -> dict[str, Any]:
        return {"verdict": "wrong_answer", "score": 0.5, "checks": []}

    with captured(execute=True):
        for regrade_id in job.results.values_list("pk", flat=True):
            assert regrades.submission_regrade_run(regrade_id, grade=grade)


def test_the_admin_save_dates_a_change_of_the_reference_but_not_of_the_statement(
    client: Any, instructor: User, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.submission_helpers import exercise_from_folder

    exercise = exercise_from_folder("linear-backward")
    exercise_grading_touch(exercise)
    client.force_login(instructor)
    url = reverse("admin:grader_exercise_change", args=[exercise.pk])
    with mock.patch.object(validate_exercise, "apply_async"), django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, change_form_data(exercise, statement_md="Reworded."), follow=True)
        assert response.status_code == 200
        exercise.refresh_from_db()
        assert exercise.grading_changed_at is None
        assert "The grading changed" not in response.content.decode()

        looser = {**exercise.spec["tolerances"], "gradient_rel": 1e-4}
        spec = json.dumps({**exercise.spec, "tolerances": looser})
        response = client.post(url, change_form_data(exercise, spec=spec), follow=True)
    exercise.refresh_from_db()
    assert exercise.spec["tolerances"]["gradient_rel"] == 1e-4
    assert exercise.grading_changed_at is not None
    assert "The grading changed" in response.content.decode()


def test_import_content_dates_a_changed_reference_and_says_so(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "relu-backward")
    with mock.patch.object(validate_exercise, "apply_async"):
        import_content(root)
        exercise = Exercise.objects.get(slug="relu-backward")
        assert exercise.grading_digest and exercise.grading_changed_at is None

        statement = root / "exercises" / "relu-backward" / "statement.md"
        statement.write_text(statement.read_text() + "\nOne more sentence.\n")
        assert "its grading changed" not in import_content(root)
        exercise.refresh_from_db()
        assert exercise.grading_changed_at is None

        solution = root / "exercises" / "relu-backward" / "solution.py"
        solution.write_text(solution.read_text() + "\n# same function, edited file\n")
        output = import_content(root)
    assert "relu-backward: its grading changed; staff can preview a regrade of past submissions" in output
    exercise.refresh_from_db()
    assert exercise.grading_changed_at is not None
