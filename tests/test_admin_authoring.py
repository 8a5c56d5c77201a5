"""Authoring exercises in the admin: preview, spec checks, and validation through Celery on save."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from grader import authoring
from grader.models import Exercise, KnownWrongVariant
from grader.tasks import validate_exercise
from tests.submission_helpers import exercise_from_folder

pytestmark = pytest.mark.django_db


@pytest.fixture
def linear(db: None) -> Exercise:
    exercise = exercise_from_folder("linear-backward")
    KnownWrongVariant.objects.create(
        exercise=exercise,
        name="dw_transposed",
        mistake="transposed",
        description="dw is transposed",
        code="import numpy as np\n\ndef linear_backward(dout, x, w, b):\n    return dout @ w.T, (x.T @ dout).T, dout.sum(axis=0)\n",
    )
    return exercise


def change_form_data(exercise: Exercise, **changes: Any) -> dict[str, Any]:
    """The POST data of the exercise's change form, as the admin page would send it."""
    import json

    data: dict[str, Any] = {
        "title": exercise.title,
        "slug": exercise.slug,
        "lesson": exercise.lesson_id or "",
        "order": exercise.order,
        "difficulty": exercise.difficulty,
        "is_active": "on" if exercise.is_active else "",
        "function_name": exercise.function_name,
        "signature": exercise.signature,
        "spec": json.dumps(exercise.spec),
        "statement_md": exercise.statement_md,
        "starter_code": exercise.starter_code,
        "reference_solution": exercise.reference_solution,
        "validation_status": exercise.validation_status,
        "validation_report": json.dumps(exercise.validation_report),
    }
    variants = list(exercise.wrong_variants.all())
    data |= {
        "wrong_variants-TOTAL_FORMS": len(variants),
        "wrong_variants-INITIAL_FORMS": len(variants),
        "wrong_variants-MIN_NUM_FORMS": 0,
        "wrong_variants-MAX_NUM_FORMS": 1000,
    }
    for index, variant in enumerate(variants):
        prefix = f"wrong_variants-{index}-"
        data |= {
            f"{prefix}id": variant.pk,
            f"{prefix}exercise": exercise.pk,
            f"{prefix}name": variant.name,
            f"{prefix}mistake": variant.mistake,
            f"{prefix}description": variant.description,
            f"{prefix}code": variant.code,
        }
    data.update(changes)
    return data


def test_the_change_page_previews_the_statement_with_math(client: Any, instructor: User, linear: Exercise) -> None:
    client.force_login(instructor)
    response = client.get(reverse("admin:grader_exercise_change", args=[linear.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="prose authoring-preview"' in page
    assert '<span class="math"' in page
    assert "vendor/katex/katex.min.js" in page and "js/lesson.js" in page
    assert "Not validated yet" in page


def test_saving_renders_the_statement_and_queues_a_validation(
    client: Any, instructor: User, linear: Exercise, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(instructor)
    data = change_form_data(linear, statement_md="Compute $dx$ **now**.\n")
    with (
        mock.patch.object(validate_exercise, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(reverse("admin:grader_exercise_change", args=[linear.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    send.assert_called_once_with(args=(linear.pk,), retry=False)
    linear.refresh_from_db()
    assert "<strong>now</strong>" in linear.statement_html
    assert linear.validation_status == "pending"
    page = client.get(reverse("admin:grader_exercise_change", args=[linear.pk])).content.decode()
    assert "Validating in the sandbox" in page


def test_an_inline_variant_can_be_added_on_the_same_page(
    client: Any, instructor: User, linear: Exercise, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(instructor)
    data = change_form_data(linear)
    data |= {
        "wrong_variants-TOTAL_FORMS": 2,
        "wrong_variants-1-exercise": linear.pk,
        "wrong_variants-1-name": "db_not_summed",
        "wrong_variants-1-mistake": "bias_not_summed",
        "wrong_variants-1-description": "db is dout[0]",
        "wrong_variants-1-code": "def linear_backward(dout, x, w, b):\n    return dout @ w.T, x.T @ dout, dout[0]\n",
    }
    with mock.patch.object(validate_exercise, "apply_async"), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:grader_exercise_change", args=[linear.pk]), data)
    assert response.status_code == 302
    assert set(linear.wrong_variants.values_list("name", flat=True)) == {"dw_transposed", "db_not_summed"}


def test_a_spec_the_loader_would_refuse_is_refused_by_the_form(client: Any, instructor: User, linear: Exercise) -> None:
    client.force_login(instructor)
    data = change_form_data(linear, spec='{"kind": "no-such-kind", "surprise": 1}')
    response = client.post(reverse("admin:grader_exercise_change", args=[linear.pk]), data)
    assert response.status_code == 200
    assert "The spec is invalid" in response.content.decode()


def test_a_broker_that_is_down_is_reported_on_the_exercise(
    linear: Exercise, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        mock.patch.object(validate_exercise, "apply_async", side_effect=ConnectionError("refused")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        authoring.exercise_validation_request(linear)
    linear.refresh_from_db()
    assert linear.validation_status == "not_queued"
    assert "could not be queued" in linear.validation_report["message"]


def test_the_outcome_table_lists_every_variant(client: Any, instructor: User, linear: Exercise) -> None:
    linear.validation_status = "invalid"
    linear.validation_report = {
        "ok": False,
        "outcomes": [
            {"name": "solution", "expected": "", "verdict": "accepted", "ok": True, "message": "accepted"},
            {"name": "dw_transposed", "expected": "transposed", "verdict": "accepted", "ok": False,
             "message": "accepted, but it is a known-wrong variant"},
        ],
    }  # fmt: skip
    linear.save()
    client.force_login(instructor)
    page = client.get(reverse("admin:grader_exercise_change", args=[linear.pk])).content.decode()
    assert "Invalid: see the table below" in page
    assert "<code>dw_transposed</code>" in page
    assert "accepted, but it is a known-wrong variant" in page


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_task_grades_the_reference_and_the_variants_in_the_sandbox(linear: Exercise) -> None:
    outcome = validate_exercise.apply(args=[linear.pk]).get()
    assert outcome == {"exercise": linear.pk, "ok": True}
    linear.refresh_from_db()
    assert linear.validation_status == "valid"
    names = [item["name"] for item in linear.validation_report["outcomes"]]
    assert "dw_transposed" in names and any(name.startswith("solution") for name in names)
    assert linear.validated_at is not None


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_variant_the_grader_accepts_makes_the_exercise_invalid(linear: Exercise) -> None:
    KnownWrongVariant.objects.create(
        exercise=linear, name="actually_right", mistake="transposed", code=linear.reference_solution
    )
    validate_exercise.apply(args=[linear.pk]).get()
    linear.refresh_from_db()
    assert linear.validation_status == "invalid"
    failed = [item for item in linear.validation_report["outcomes"] if not item["ok"]]
    assert [item["name"] for item in failed] == ["actually_right"]


def test_the_lesson_change_page_previews_the_rendered_lesson(client: Any, instructor: User) -> None:
    from lessons.models import Lesson

    lesson = Lesson.objects.create(
        slug="backpropagation",
        title="Backprop",
        question="?",
        short_answer_html='<p>The <span class="math" data-display="false">\\nabla</span> rule.</p>',
        body_html="<h2>Explanation</h2>",
    )
    client.force_login(instructor)
    page = client.get(reverse("admin:lessons_lesson_change", args=[lesson.pk])).content.decode()
    assert '<div class="prose authoring-preview"><p>The <span class="math"' in page
    assert "vendor/katex/katex.min.js" in page


def test_a_failing_validation_unpublishes_the_exercise_and_says_why(
    client: Any, instructor: User, linear: Exercise
) -> None:
    from grader.validation import exercise_validate

    Exercise.objects.filter(pk=linear.pk).update(spec={"kind": "no-such-kind"})
    linear.refresh_from_db()
    exercise_validate(linear)
    linear.refresh_from_db()
    assert linear.validation_status == "invalid"
    assert not linear.is_active and linear.withdrawn_by_validation
    client.force_login(instructor)
    assert client.get(reverse("exercise_detail", args=[linear.slug])).status_code == 404
    page = client.get(reverse("admin:grader_exercise_change", args=[linear.pk])).content.decode()
    assert "Unpublished by validation" in page and "these failed: spec" in page


def test_an_exercise_its_author_retired_is_not_marked_as_withdrawn(linear: Exercise) -> None:
    from grader.validation import exercise_validate

    Exercise.objects.filter(pk=linear.pk).update(spec={"kind": "no-such-kind"}, is_active=False)
    linear.refresh_from_db()
    exercise_validate(linear)
    linear.refresh_from_db()
    assert not linear.is_active and not linear.withdrawn_by_validation


def test_the_author_publishing_again_clears_the_withdrawal(client: Any, instructor: User, linear: Exercise) -> None:
    Exercise.objects.filter(pk=linear.pk).update(is_active=False, withdrawn_by_validation=True)
    linear.refresh_from_db()
    client.force_login(instructor)
    with mock.patch.object(validate_exercise, "apply_async"):
        response = client.post(
            reverse("admin:grader_exercise_change", args=[linear.pk]), change_form_data(linear, is_active="on")
        )
    assert response.status_code == 302
    linear.refresh_from_db()
    assert linear.is_active and not linear.withdrawn_by_validation


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_passing_validation_publishes_again_only_what_it_withdrew(linear: Exercise) -> None:
    Exercise.objects.filter(pk=linear.pk).update(is_active=False, withdrawn_by_validation=True)
    validate_exercise.apply(args=[linear.pk]).get()
    linear.refresh_from_db()
    assert linear.validation_status == "valid"
    assert linear.is_active and not linear.withdrawn_by_validation

    Exercise.objects.filter(pk=linear.pk).update(is_active=False, withdrawn_by_validation=False)
    validate_exercise.apply(args=[linear.pk]).get()
    linear.refresh_from_db()
    assert linear.validation_status == "valid" and not linear.is_active


def test_the_validation_fragment_gives_the_outcome_alone(client: Any, instructor: User, linear: Exercise) -> None:
    Exercise.objects.filter(pk=linear.pk).update(validation_status="pending")
    client.force_login(instructor)
    page = client.get(reverse("admin:grader_exercise_change", args=[linear.pk])).content.decode()
    url = reverse("admin:grader_exercise_validation", args=[linear.pk])
    assert f'data-validation-url="{url}"' in page and 'data-validation-status="pending"' in page
    assert "js/admin_validation.js" in page
    Exercise.objects.filter(pk=linear.pk).update(
        validation_status="invalid",
        validation_report={"ok": False, "outcomes": [{"name": "dw_transposed", "ok": False, "message": "accepted"}]},
    )
    fragment = client.get(url)
    assert fragment.status_code == 200 and fragment["X-Validation-Status"] == "invalid"
    assert "dw_transposed" in fragment.content.decode() and "<form" not in fragment.content.decode()
    client.logout()
    assert client.get(url).status_code == 302  # the admin's log-in page, not the outcome


def test_quiz_choices_are_edited_one_per_line_with_a_correct_mark(client: Any, instructor: User) -> None:
    from lessons.models import Lesson
    from quizzes.models import QuizQuestion

    lesson = Lesson.objects.create(slug="l", title="L", body_md="x")
    form = {
        "lesson": str(lesson.pk),
        "key": "sum",
        "order": "1",
        "kind": "single_choice",
        "prompt_md": "Which is $1 + 1$?",
        "explanation_md": "Counting.",
        "choices": "* $2$\n\n3\n",
        "answer": "null",
        "tolerance": "{}",
        "generator": "",
        "is_active": "on",
    }
    client.force_login(instructor)
    add = reverse("admin:quizzes_quizquestion_add")
    refused = client.post(add, {**form, "choices": "* 2\n* 3"})
    assert "exactly 1 correct choice, found 2" in refused.content.decode()
    assert client.post(add, form).status_code == 302
    question = QuizQuestion.objects.get(key="sum")
    assert [(c["text_md"].strip(), c["correct"]) for c in question.choices] == [("$2$", True), ("3", False)]
    page = client.get(reverse("admin:quizzes_quizquestion_change", args=[question.pk])).content.decode()
    assert "* $2$\n3</textarea>" in page and "text_html" not in page
