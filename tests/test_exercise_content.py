"""The exercise loader: folders become Exercise rows linked to their lesson; bad folders are reported, not fatal."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from contentsync.files import ContentReport
from grader.content import load_exercises, parse_exercise_folder
from grader.models import Exercise, KnownWrongVariant
from grader.tasks import validate_exercise
from grader.validation import exercise_validate, exercise_validation_run

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"
LESSONS_AND_EXERCISES = override_settings(
    CONTENT_LOADERS=["lessons.content.load_lessons", "grader.content.load_exercises"]
)


def content_copy(tmp_path: Path, *slugs: str) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT / "lessons", root / "lessons")
    for slug in slugs:
        shutil.copytree(CONTENT / "exercises" / slug, root / "exercises" / slug)
    return root


def import_content(root: Path) -> str:
    out = StringIO()
    with LESSONS_AND_EXERCISES:
        call_command("import_content", "--path", str(root), stdout=out, stderr=StringIO())
    return out.getvalue()


def test_every_exercise_folder_in_the_repository_parses() -> None:
    folders = sorted(path for path in (CONTENT / "exercises").iterdir() if path.is_dir())
    assert len(folders) >= 12
    for folder in folders:
        parsed = parse_exercise_folder(folder)
        assert len(parsed.wrong) >= 3
        assert f"/lessons/{parsed.spec.lesson}/" in parsed.statement_md, folder.name


@pytest.mark.django_db
def test_import_creates_exercises_linked_to_their_lessons_with_rendered_statements(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "linear-backward", "softmax-cross-entropy")
    output = import_content(root)
    assert "created   exercise linear-backward" in output
    linear = Exercise.objects.get(slug="linear-backward")
    assert linear.lesson is not None and linear.lesson.slug == "backpropagation"
    assert linear.function_name == "linear_backward"
    assert linear.signature.startswith("linear_backward(dout, x, w, b)")
    assert '<span class="math"' in linear.statement_html
    assert 'href="/lessons/backpropagation/#mathematical-foundations"' in linear.statement_html
    assert "dw = np.zeros_like(w)" in linear.starter_code
    assert "dout.sum(axis=0)" in linear.reference_solution
    assert linear.spec["kind"] == "linear-backward"
    assert linear.spec["tolerances"]["gradient_rel"] == 1e-6
    variants = {v.name: v.mistake for v in KnownWrongVariant.objects.filter(exercise=linear)}
    assert variants["dw_transposed"] == "transposed"
    assert len(variants) == 5
    assert Exercise.objects.get(slug="softmax-cross-entropy").lesson.slug == "activation-functions"  # type: ignore[union-attr]


@pytest.mark.django_db
def test_a_second_import_of_unchanged_folders_changes_nothing(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "relu-backward")
    import_content(root)
    before = Exercise.objects.get(slug="relu-backward").updated_at
    output = import_content(root)
    assert "exercise relu-backward" not in output.replace("unchanged", "")
    assert Exercise.objects.get(slug="relu-backward").updated_at == before


@pytest.mark.django_db
def test_a_changed_folder_updates_the_row_and_its_variants(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "relu-backward")
    import_content(root)
    (root / "exercises/relu-backward/wrong/times_activation.py").unlink()
    statement = root / "exercises/relu-backward/statement.md"
    statement.write_text(statement.read_text() + "\nOne more line.\n")
    output = import_content(root)
    assert "updated   exercise relu-backward" in output
    exercise = Exercise.objects.get(slug="relu-backward")
    assert "One more line." in exercise.statement_html
    assert not exercise.wrong_variants.filter(name="times_activation").exists()
    assert exercise.wrong_variants.count() == 3


@pytest.mark.django_db
def test_a_bad_folder_is_reported_with_file_and_line_and_the_others_still_load(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "linear-backward", "tanh-backward")
    spec = root / "exercises/tanh-backward/exercise.yaml"
    spec.write_text(spec.read_text().replace("difficulty: EASY", "difficulty: TRIVIAL"))
    with pytest.raises(CommandError, match="1 content error"):
        import_content(root)
    report = ContentReport(root=root)
    load_exercises(root, report, write=False)
    assert [str(error) for error in report.errors] == [
        "content/exercises/tanh-backward/exercise.yaml:5: 'difficulty' must be one of EASY, MEDIUM, HARD"
    ]
    assert Exercise.objects.filter(slug="linear-backward").exists()
    assert not Exercise.objects.filter(slug="tanh-backward").exists()


@pytest.mark.django_db
def test_a_variant_with_an_unknown_mistake_code_is_reported(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "mse-loss")
    variant = root / "exercises/mse-loss/wrong/sum_not_mean.py"
    variant.write_text(variant.read_text().replace("scaled_by_n", "too_big", 1))
    report = ContentReport(root=root)
    load_exercises(root, report, write=False)
    assert len(report.errors) == 1
    assert str(report.errors[0]).startswith(
        "content/exercises/mse-loss/wrong/sum_not_mean.py:1: unknown mistake 'too_big'"
    )


@pytest.mark.django_db
def test_a_removed_folder_retires_its_exercise_without_deleting_it(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "sigmoid-backward", "tanh-backward")
    import_content(root)
    shutil.rmtree(root / "exercises/tanh-backward")
    output = import_content(root)
    assert "exercise tanh-backward (retired" in output
    assert Exercise.objects.get(slug="tanh-backward").is_active is False
    assert Exercise.objects.get(slug="sigmoid-backward").is_active is True


@pytest.mark.django_db
@pytest.mark.sandbox
def test_validating_an_exercise_from_the_database_stores_the_outcome(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "relu-backward")
    import_content(root)
    exercise = Exercise.objects.get(slug="relu-backward")
    assert exercise.validation_status == "unknown"
    report = exercise_validate(exercise)
    assert report.ok
    exercise.refresh_from_db()
    assert exercise.validation_status == "valid"
    assert exercise.validated_at is not None
    assert {o["name"] for o in exercise.validation_report["outcomes"]} >= {"mask_from_dout", "zeroes_dout_in_place"}

    # An admin edit that makes a "wrong" variant correct is caught.
    variant = exercise.wrong_variants.get(name="times_activation")
    variant.code = exercise.reference_solution
    variant.save()
    assert not exercise_validate(exercise).ok
    exercise.refresh_from_db()
    assert exercise.validation_status == "invalid"


@pytest.mark.django_db
@pytest.mark.sandbox
def test_import_keeps_an_exercise_its_validation_unpublished_offline_until_it_passes_again(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    root = content_copy(tmp_path, "relu-backward")
    folder = root / "exercises/relu-backward"
    good = (folder / "solution.py").read_text()
    # The author's reference is wrong: the validation (the real grader) takes the exercise offline.
    (folder / "solution.py").write_text((folder / "wrong/times_activation.py").read_text())
    import_content(root)
    exercise = Exercise.objects.get(slug="relu-backward")
    assert not exercise_validate(exercise).ok
    exercise.refresh_from_db()
    assert (exercise.is_active, exercise.withdrawn_by_validation) == (False, True)

    # Importing the same folder again does not publish it.
    with (
        mock.patch.object(validate_exercise, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        output = import_content(root)
    assert "note      exercise relu-backward is still unpublished: its validation failed" in output
    exercise.refresh_from_db()
    assert (exercise.is_active, exercise.validation_status) == (False, "invalid")
    send.assert_not_called()

    # The author fixes the reference: the new content is written, kept offline, and validated.
    (folder / "solution.py").write_text(good)
    with (
        mock.patch.object(validate_exercise, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        output = import_content(root)
    assert "exercise relu-backward (unpublished until its validation passes; validation queued)" in output
    exercise.refresh_from_db()
    assert exercise.reference_solution == good
    assert (exercise.is_active, exercise.withdrawn_by_validation, exercise.validation_status) == (
        False,
        True,
        "pending",
    )
    send.assert_called_once_with(args=(exercise.pk,), retry=False)
    # The worker's run of that task passes and publishes it again.
    assert exercise_validation_run(exercise.pk) == {"exercise": exercise.pk, "ok": True}
    exercise.refresh_from_db()
    assert (exercise.is_active, exercise.withdrawn_by_validation, exercise.validation_status) == (True, False, "valid")
    # ...and from then on an unchanged import leaves it published.
    output = import_content(root)
    assert "relu-backward" not in output  # neither written again nor noted: unchanged
    exercise.refresh_from_db()
    assert exercise.is_active
